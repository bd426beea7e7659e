"""Big events are bounded in bytes: in the stream cache, and in each page of the log."""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

from litestar.testing import AsyncTestClient

from events.log import PAGE_BYTES
from projections.stream_cache import held_bytes
from projections.timeline import decode_payload
from tests import factories
from tests.support import Tokens, append, client_for, unique_id

MiB = 1024 * 1024


def big_round(company: str, number: int) -> dict[str, Any]:
    """A round of about 280 KB: 500 investors with long names, within the body limit."""
    envelope = factories.round_announced(company, effective_date=f"2023-01-{number + 1:02d}")
    envelope["data"]["round_name"] = f"round {number}"
    envelope["data"]["investors"] = [
        {"investor_id": f"inv-{i}", "name": f"{i} " + "n" * 490} for i in range(500)
    ]
    return envelope


def payload_bytes(event: dict[str, Any]) -> int:
    """The bytes of an event's stored JSON: its data, source and metadata."""
    return sum(
        len(json.dumps(event[k], separators=(",", ":"), ensure_ascii=False).encode())
        for k in ("data", "source", "metadata")
        if event.get(k) is not None
    )


def test_a_held_event_is_counted_for_at_least_the_memory_it_takes() -> None:
    # given a big round as stored
    text = json.dumps(big_round("co-a", 0)["data"])
    # when it is decoded as the stream cache decodes it
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        held = [decode_payload("round_announced", text) for _ in range(4)]
        taken = (tracemalloc.get_traced_memory()[0] - before) / len(held)
    finally:
        tracemalloc.stop()
    # then the cache counts it for at least that much, and not wildly more
    assert taken <= held_bytes(text) <= 6 * taken


async def test_the_stream_cache_stays_within_its_bytes_and_evicts(
    db_url: str, tokens: Tokens
) -> None:
    bound = 10 * MiB  # two of the companies below, not three
    async with client_for(db_url, stream_cache_bytes=bound) as client:
        # given three companies, each with three rounds of about 280 KB
        companies = [unique_id() for _ in range(3)]
        for company in companies:
            for number in range(3):
                await append(client, tokens, big_round(company, number))
        cache = client.app.state.reads.streams

        # when each is asked about in turn
        for company in companies:
            response = await client.get(f"/companies/{company}", headers=tokens.header("read"))
            assert response.status_code == 200, response.text
            assert cache.bytes <= bound

    # then the oldest was evicted to keep the bytes held within the bound
    assert len(cache) == 2
    assert 6 * MiB < cache.bytes <= bound


async def _pages(client: AsyncTestClient[Any], tokens: Tokens, path: str, cursor: str) -> Any:
    pages, params = [], {"limit": 1000}
    while True:
        response = await client.get(path, params=params, headers=tokens.header("read"))
        assert response.status_code == 200, response.text
        pages.append(response.json())
        following = pages[-1][f"next_{cursor}"]
        if following is None:
            return pages
        params[cursor] = following


async def test_a_page_of_big_events_stops_at_its_bytes_and_continues(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        # given a stream of 30 rounds of about 280 KB (8 MiB)
        company = unique_id()
        receipts = [await append(client, tokens, big_round(company, n)) for n in range(30)]
        stream = f"company:{company}"

        # when the log and the stream are read with the largest limit
        by_position = await _pages(client, tokens, f"/events?stream={stream}", "after")
        by_version = await _pages(client, tokens, f"/streams/{stream}/events", "after_version")

    # then each page holds about PAGE_BYTES of payloads, and the pages hold every event once
    for pages in (by_position, by_version):
        assert len(pages) >= 2
        for page in pages:
            assert sum(map(payload_bytes, page["events"][:-1])) < PAGE_BYTES + 1024
        events = [e["event_id"] for page in pages for e in page["events"]]
        assert events == [r["event_id"] for r in receipts]
