"""The read models' changes: applying the log in any batches gives the same rows as at once."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.read_models import Changes, changes

companies = st.sampled_from(["zhipu-ai", "baichuan", "moonshot"])
investor_lists = st.lists(st.sampled_from(["alibaba", "tencent", "xiaomi"]), unique=True)


@st.composite
def logs(draw: Any) -> list[tuple[str, str, int, str | None]]:
    log: list[tuple[str, str, int, str | None]] = []
    rounds: list[tuple[str, uuid.UUID]] = []
    for position in range(1, draw(st.integers(0, 30)) + 1):
        company = draw(companies)
        kind = draw(st.sampled_from(["company_registered", "round_announced", "event_corrected"]))
        event_id = uuid.uuid4()
        if kind == "event_corrected" and rounds:
            company, target = draw(st.sampled_from(rounds))
            investors = [{"investor_id": i} for i in draw(investor_lists)]
            data: Any = {"target_event_id": str(target), "data": {"investors": investors}}
        elif kind == "round_announced":
            data = {
                "company_id": company,
                "investors": [{"investor_id": i} for i in draw(investor_lists)],
            }
            rounds.append((company, event_id))
        else:
            kind, data = "company_registered", {"company_id": company}
        payload = msgspec.json.encode(data).decode()
        log.append((f"company:{company}", kind, position, payload))
    return log


def merged(parts: list[Changes]) -> Changes:
    total = Changes()
    for part in parts:  # what ON CONFLICT DO NOTHING does, batch after batch
        for key, position in part.companies.items():
            total.companies.setdefault(key, position)
        for link, position in part.links.items():
            total.links.setdefault(link, position)
    return total


@settings(max_examples=200, deadline=None)
@given(logs(), st.lists(st.integers(1, 10), min_size=1))
def test_incremental_batches_equal_a_replay_from_scratch(
    log: list[tuple[str, str, int, str | None]], sizes: list[int]
) -> None:
    batches: list[Changes] = []
    at = 0
    while at < len(log):
        size = sizes[len(batches) % len(sizes)]
        batches.append(changes(log[at : at + size]))
        at += size
    assert merged(batches) == changes(log)
