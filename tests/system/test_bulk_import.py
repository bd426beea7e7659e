"""``ledger import`` of large files as a process: killed and run again, beside the service, refused.

What an import must leave, however it ends: each line's event at most once, the batches before
a refused line and nothing of its batch, a gapless log whose chain verifies, and every append
the service acknowledged meanwhile.
"""

from __future__ import annotations

import asyncio
import functools
import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import factories
from tests.support import (
    ServerProcess,
    Tokens,
    connected,
    count_events,
    ledger,
    unique_id,
    wait_for,
)

LINES = 100_000
BATCH = 500  # IMPORT_BATCH: a refused line takes its batch with it


def history(n: int, companies: int = 1_000) -> list[dict[str, Any]]:
    """Return ``n`` envelopes: companies, their valuations, and now and then a correction."""
    names = [unique_id() for _ in range(companies)]
    envelopes = [factories.company_registered(name) for name in names]
    valuations: list[tuple[str, str]] = []  # (event_id, company) of the last few valuations
    while len(envelopes) < n:
        i = len(envelopes)
        name = names[i % companies]
        if i % 37 == 0 and valuations:
            target, company = valuations[(i // 37) % len(valuations)]
            value = {"value": str(2_000_000_000 + i), "currency": "USD"}
            data = {"company_id": company, "valuation": value, "basis": "reported"}
            envelopes.append(factories.corrected(target, data))
        else:
            envelope = factories.valuation_reported(name, str(1_000_000_000 + i))
            valuations = [*valuations[-99:], (envelope["event_id"], name)]
            envelopes.append(envelope)
    return envelopes[:n]


def write_lines(path: Path, envelopes: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in envelopes))
    return path


def importer(
    ledger_processes: Callable[..., ServerProcess], db_url: str, path: Path
) -> ServerProcess:
    process = ledger_processes(db_url, "import", str(path))
    process.start()
    return process


async def at_least(db_url: str, n: int) -> bool:
    return await count_events(db_url) >= n


def intact(db_url: str, events: int) -> None:
    verified = ledger(db_url, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"intact: {events} events" in verified.stdout


@pytest.mark.timeout(600)
async def test_an_import_killed_at_several_points_resumes_to_exactly_its_lines(
    db_url: str, tmp_path: Path, ledger_processes: Callable[..., ServerProcess]
) -> None:
    # given a file of 100,000 lines
    path = write_lines(tmp_path / "history.jsonl", history(LINES))
    # when its import is killed (kill -9) once some events are in, and again further on
    for reached in (1, 30_000, 60_000):
        process = importer(ledger_processes, db_url, path)
        await wait_for(functools.partial(at_least, db_url, reached), within=300)
        process.kill()
        assert process.process is not None and process.process.returncode == -signal.SIGKILL
    # and it is run again to the end
    last = ledger(db_url, "import", str(path))
    # then every line is in the log exactly once, and the chain verifies
    assert last.returncode == 0, last.stderr
    assert f"imported {LINES:,} lines" in last.stdout
    assert await count_events(db_url) == LINES
    async with connected(db_url) as conn:
        assert await conn.fetchval("SELECT count(DISTINCT event_id) FROM events") == LINES
    intact(db_url, LINES)


async def _append_until(
    base_url: str, tokens: Tokens, done: Callable[[], bool], company: str
) -> list[dict[str, Any]]:
    """Append single events and batches of ten until ``done``; return the receipts."""
    receipts: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=base_url, headers=tokens.header("write")) as client:
        i = 0
        while not done():
            i += 1
            body: dict[str, Any] = factories.valuation_reported(company, str(10**9 + i))
            if i % 3 == 0:
                body = {"events": [factories.valuation_reported(company) for _ in range(10)]}
            response = await client.post("/events", json=body, timeout=60)
            assert response.status_code == 201, response.text
            answer = response.json()
            receipts.extend(answer.get("receipts", [answer]))
    return receipts


@pytest.mark.timeout(600)
async def test_appends_from_the_service_during_an_import_are_all_kept(
    db_url: str,
    tmp_path: Path,
    tokens: Tokens,
    ledger_processes: Callable[..., ServerProcess],
) -> None:
    # given the service running, and a file of 100,000 lines
    envelopes = history(LINES)
    path = write_lines(tmp_path / "history.jsonl", envelopes)
    server = ledger_processes(db_url)
    server.start()
    company = unique_id()
    async with httpx.AsyncClient(base_url=server.base_url, headers=tokens.header("write")) as c:
        registered = await c.post("/events", json=factories.company_registered(company))
        assert registered.status_code == 201, registered.text
    # when clients append through the service for as long as the import runs
    process = importer(ledger_processes, db_url, path)
    assert process.process is not None
    popen = process.process

    def finished() -> bool:
        return popen.poll() is not None

    appenders = [_append_until(server.base_url, tokens, finished, company) for _ in range(4)]
    await wait_for(lambda: at_least(db_url, 1), within=300)
    receipts = [r for rs in await asyncio.gather(*appenders) for r in rs]
    # then the import went through, and so did every acknowledged append, where it was told
    assert popen.returncode == 0, process.log_path.read_text()
    assert receipts, "no append was acknowledged while the import ran"
    async with connected(db_url) as conn:
        stored = {
            str(r["event_id"]): (r["position"], bytes(r["hash"]).hex())
            for r in await conn.fetch(
                "SELECT event_id, position, hash FROM events WHERE event_id = ANY($1::uuid[])",
                [r["event_id"] for r in receipts],
            )
        }
        imported = await conn.fetch(
            "SELECT event_id, position FROM events WHERE event_id = ANY($1::uuid[])",
            [e["event_id"] for e in envelopes],
        )
    assert stored == {r["event_id"]: (r["position"], r["hash"]) for r in receipts}
    assert await count_events(db_url) == LINES + len(receipts) + 1
    # and the service's appends fell between the import's batches, never inside one
    position = {str(r["event_id"]): r["position"] for r in imported}
    for start in range(0, LINES, BATCH):
        batch = [position[e["event_id"]] for e in envelopes[start : start + BATCH]]
        first = batch[0]
        assert batch == list(range(first, first + len(batch))), f"batch at line {start + 1}"
    intact(db_url, LINES + len(receipts) + 1)


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    ("bad_line", "field"),
    [(30_250, "data.jurisdiction"), (25_123, "data.target_event_id")],
    ids=["refused-when-decoded", "refused-when-planned"],
)
async def test_a_bad_line_in_a_large_file_stops_the_import_at_its_batch(
    db_url: str, tmp_path: Path, bad_line: int, field: str
) -> None:
    # given a file of 50,000 lines with one bad line in the middle
    envelopes = [factories.company_registered(unique_id()) for _ in range(50_000)]
    if field == "data.jurisdiction":
        envelopes[bad_line - 1]["data"]["jurisdiction"] = "XX"
    else:  # a retraction of an event that is nowhere
        envelopes[bad_line - 1] = factories.retracted("00000000-0000-4000-8000-000000000000")
    path = write_lines(tmp_path / "in.jsonl", envelopes)
    # when it is imported
    result = ledger(db_url, "import", str(path))
    # then the import stops at that line, with the batches before its batch stored
    assert result.returncode == 1
    assert f"line {bad_line}" in result.stderr and field in result.stderr, result.stderr
    assert await count_events(db_url) == (bad_line - 1) // BATCH * BATCH
    intact(db_url, (bad_line - 1) // BATCH * BATCH)
