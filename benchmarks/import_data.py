"""The JSON-lines file bench_import.py imports: the same log bench_queries.py loads, with ids."""

from __future__ import annotations

import random
import uuid
from pathlib import Path
from typing import Any

import msgspec
from query_data import LogPlan

_encoder = msgspec.json.Encoder()


def write_lines(path: Path, events: int, companies: int) -> dict[str, int]:
    """Write ``events`` envelopes, each with its event_id, one per line; return their kinds.

    About 2% are corrections of earlier valuations, so the import checks targets as it goes.
    """
    plan = LogPlan(events, companies)
    ids = random.Random(7)
    with path.open("wb") as out:
        for envelope, slot in plan.events():
            event_id = uuid.UUID(int=ids.getrandbits(128), version=4)
            envelope = msgspec.structs.replace(envelope, event_id=event_id)
            plan.learn([envelope], [slot])
            out.write(_encoder.encode(envelope) + b"\n")
    kinds: dict[str, Any] = dict(plan.kinds)
    return kinds


async def copy_planned(url: str, path: Path) -> float:
    """Events/s of a binary COPY of the file's events, decoded and planned beforehand, into a
    table shaped and indexed like the log: what PostgreSQL alone needs to store them there."""
    import datetime as dt
    import time

    import asyncpg

    from events import commit
    from events.bulk_decoding import decode_chunk, read_chunks
    from events.bulk_planning import plan_group
    from events.chain import GENESIS
    from events.planning import GroupState

    state = GroupState(0, GENESIS, dt.datetime.now(dt.UTC), {}, {})
    groups = []
    with path.open("rb") as lines:
        for chunk in read_chunks(lines):
            state.rows = []
            plan_group(decode_chunk(chunk).unpacked(), state)
            groups.append(state.rows)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TABLE bench_log (LIKE events INCLUDING ALL)")
        started = time.perf_counter()
        for rows in groups:
            async with conn.transaction():
                records = [(*commit.row_values(row), state.recorded_at) for row in rows]
                await conn.copy_records_to_table(
                    "bench_log", records=records, columns=[*commit.COPY_COLUMNS, "recorded_at"]
                )
        elapsed = time.perf_counter() - started
        await conn.execute("DROP TABLE bench_log")
    finally:
        await conn.close()
    return sum(len(rows) for rows in groups) / elapsed
