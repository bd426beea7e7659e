"""The raw baselines of bench_queries.py, (B) and (D), and (C) the projections' rebuild."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from harness.cpu import CpuGroups, CpuMeter, this_process
from harness.database import connected, connected_many
from harness.report import percentiles, stderr_console
from query_data import Figure, company_id

WARMUP_SECONDS = 2
REPLAY_CHUNK = 20_000  # projections.projector.rebuild's default chunk


# What (B) and (D) read: the columns the ledger's own reads of the log fetch (its stream read
# and projections/projector.py), by the same indexes. Written out here on purpose: these are
# the raw baselines the service is measured against, not the service's own code.
STREAM_SQL = """
    SELECT event_id, type, position, recorded_at, effective_date, data::text AS data
    FROM events WHERE stream = $1 ORDER BY stream_version
"""
REPLAY_SQL = """
    SELECT stream, event_id, type, position, recorded_at, effective_date, data::text AS data
    FROM events WHERE position > $1 ORDER BY position LIMIT $2
"""


def _decoders() -> dict[str, Any]:
    import msgspec

    from events.vocabulary import PAYLOAD_TYPES

    return {kind: msgspec.json.Decoder(cls) for kind, cls in PAYLOAD_TYPES.items()}


async def _read_streams(
    conns: list[Any], seconds: float, companies: int, decoders: dict[str, Any]
) -> tuple[list[float], int]:
    """Read random company streams on every connection for ``seconds``; return the latencies
    and the events decoded."""
    loop = asyncio.get_running_loop()
    stop = loop.time() + seconds
    latencies: list[float] = []
    events = 0

    async def worker(conn: Any) -> None:
        nonlocal events
        rng = random.Random()
        while loop.time() < stop:
            stream = f"company:{company_id(rng.randint(1, companies))}"
            started = time.perf_counter()
            rows = await conn.fetch(STREAM_SQL, stream)
            for row in rows:
                decoders[row["type"]].decode(row["data"])
            latencies.append(time.perf_counter() - started)
            events += len(rows)

    await asyncio.gather(*(worker(c) for c in conns))
    return latencies, events


async def raw_streams(
    url: str, seconds: float, connections: int, companies: int, cpu: CpuGroups
) -> Figure:
    """(B) read one company stream by index and decode its payloads, from ``connections``."""
    decoders = _decoders()
    async with connected_many(url, connections) as conns:
        await _read_streams(conns, WARMUP_SECONDS, companies, decoders)
        meter = CpuMeter({**cpu, "client": this_process})
        with meter:
            began = time.perf_counter()
            latencies, events = await _read_streams(conns, seconds, companies, decoders)
            elapsed = time.perf_counter() - began
    p50, p99 = percentiles(latencies)
    return Figure(
        "B",
        f"asyncpg: one company stream by index + msgspec decode, {connections} connections",
        len(latencies) / elapsed,
        "streams/s",
        p50_ms=p50,
        p99_ms=p99,
        latency_source="per stream",
        count=len(latencies),
        seconds=elapsed,
        cpu=meter.percent,
        note=f"{events / max(len(latencies), 1):.1f} events per stream, "
        f"{events / elapsed:,.0f} events/s decoded",
    )


async def rebuild_case(url: str, total: int, cpu: CpuGroups) -> Figure:
    """(C) projections.projector.rebuild over the whole log, as `ledger projections rebuild`."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from projections.projector import rebuild

    async with connected(url) as conn:
        with Progress(
            TextColumn("(C) rebuilding the read models"),
            BarColumn(),
            MofNCompleteColumn(),
            console=stderr_console(),
        ) as progress:
            bar = progress.add_task("rebuild", total=total)

            def advance(done: int, until: int) -> None:
                progress.update(bar, completed=done, total=until)

            meter = CpuMeter({**cpu, "client": this_process})
            with meter:
                began = time.perf_counter()
                done = await rebuild(conn, advance)
                elapsed = time.perf_counter() - began
        rows = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM rm_companies) AS companies,"
            " (SELECT count(*) FROM rm_investor_companies) AS links"
        )
    assert rows is not None
    return Figure(
        "C",
        f"projections.projector.rebuild, chunks of {REPLAY_CHUNK:,}",
        done / elapsed,
        "events/s",
        count=done,
        seconds=elapsed,
        cpu=meter.percent,
        note=f"built {rows['companies']:,} companies and {rows['links']:,} investor links",
    )


async def raw_replay(url: str, cpu: CpuGroups) -> Figure:
    """(D) read the whole log in position order in chunks and decode every payload."""
    decoders = _decoders()
    async with connected(url) as conn:
        meter = CpuMeter({**cpu, "client": this_process})
        with meter:
            began = time.perf_counter()
            after, done = 0, 0
            while True:
                rows = await conn.fetch(REPLAY_SQL, after, REPLAY_CHUNK)
                if not rows:
                    break
                for row in rows:
                    decoders[row["type"]].decode(row["data"])
                after = rows[-1]["position"]
                done += len(rows)
            elapsed = time.perf_counter() - began
    return Figure(
        "D",
        f"asyncpg: whole log by position, chunks of {REPLAY_CHUNK:,} + msgspec decode",
        done / elapsed,
        "events/s",
        count=done,
        seconds=elapsed,
        cpu=meter.percent,
    )
