"""The hot reads of the log keep their index plans, on a log big enough to make them matter.

The planner picks a plan from the table's statistics, so a hot read that is fast on a test's
handful of events could scan the whole log in production. Each statement is explained on a log
of tens of thousands of events, as asyncpg runs it: prepared, with a plan for its values and
with the generic plan PostgreSQL settles on after a few executions.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest

from events.log import READ_AFTER, READ_STREAM, READ_STREAMS

STREAMS = 3_000
EVENTS_PER_STREAM = 10
PLAN_MODES = ["force_custom_plan", "force_generic_plan"]


@pytest.fixture(scope="module")
async def big_log(shared_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A log of 30,000 company events and a few export rules, analysed, on one connection."""
    conn = await asyncpg.connect(shared_url)
    events = STREAMS * EVENTS_PER_STREAM
    await conn.execute(
        f"""INSERT INTO events (position, event_id, stream, stream_version, type,
                                effective_date, recorded_at, source, data, hash)
            SELECT n, gen_random_uuid(),
                   CASE WHEN n % 1000 = 0 THEN 'export-rule:r-' || n
                        ELSE 'company:co-' || (n % {STREAMS}) END,
                   CASE WHEN n % 1000 = 0 THEN 1 ELSE (n - 1) / {STREAMS} + 1 END,
                   CASE WHEN n % 1000 = 0 THEN 'export_rule' ELSE 'valuation_reported' END,
                   DATE '2023-01-01' + (n % 365),
                   TIMESTAMPTZ '2024-01-01' + n * INTERVAL '1 second',
                   '{{"name": "a report"}}', '{{"company_id": "co"}}', '\\x00'
            FROM generate_series(1, {events}) AS n"""
    )
    await conn.execute(
        "UPDATE ledger_head SET position = $1, recorded_at = $2",
        events,
        dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=events),
    )
    await conn.execute("ANALYZE events")
    try:
        yield conn
    finally:
        await conn.close()


async def plan(conn: asyncpg.Connection, mode: str, statement: str, arguments: str) -> Any:
    """Return the JSON plan of ``statement`` run with ``arguments`` (SQL literals) in ``mode``."""
    await conn.execute(f"SET plan_cache_mode = {mode}")
    await conn.execute(f"PREPARE hot AS {statement}")
    try:
        return await conn.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE hot({arguments})")
    finally:
        await conn.execute("DEALLOCATE hot")
        await conn.execute("RESET plan_cache_mode")


def nodes(tree: Any) -> Iterator[dict[str, Any]]:
    """Every node of a JSON plan."""
    if isinstance(tree, list):
        for item in tree:
            yield from nodes(item)
    elif isinstance(tree, dict):
        if "Node Type" in tree:
            yield tree
        for value in tree.values():
            yield from nodes(value)


def explained(tree: str) -> tuple[int, set[str]]:
    """How often a plan reads the events table whole, and the indexes it reads instead."""
    found = list(nodes(json.loads(tree)))
    whole = sum(n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "events" for n in found)
    return whole, {n["Index Name"] for n in found if "Index Name" in n}


@pytest.mark.parametrize("mode", PLAN_MODES)
async def test_a_stream_read_uses_the_stream_index(big_log: asyncpg.Connection, mode: str) -> None:
    # when a stream is read from its start, as GET /streams/{stream}/events does
    tree = await plan(big_log, mode, READ_STREAM, "'company:co-17', 0, 1000")
    # then only the (stream, stream_version) index is read, never the whole log
    assert explained(tree) == (0, {"events_stream_version_key"}), tree


@pytest.mark.parametrize("mode", PLAN_MODES)
async def test_the_read_after_a_position_uses_the_position_index(
    big_log: asyncpg.Connection, mode: str
) -> None:
    # when the log is read after a position, as GET /events, exports and consumers do
    tree = await plan(big_log, mode, READ_AFTER[(False, False)], "15000, 1000")
    # then the primary key is walked in order from that position
    assert explained(tree) == (0, {"events_pkey"}), tree


@pytest.mark.parametrize("mode", PLAN_MODES)
async def test_the_point_in_time_read_reads_no_part_of_the_log_whole(
    big_log: asyncpg.Connection, mode: str
) -> None:
    # when the streams of a question are read with the positions known at an instant
    arguments = "ARRAY['company:co-17', 'company:co-18'], ARRAY[0, 4], '2024-01-01T03:00:00Z'"
    tree = await plan(big_log, mode, READ_STREAMS, arguments)
    # then each of its parts goes through its index: the streams, the rules, recorded_at
    indexes = {"events_stream_version_key", "events_export_rule_streams"}
    assert explained(tree) == (0, indexes | {"events_recorded_at_position"}), tree
