"""Case (c) of bench_append.py: raw asyncpg appends under the same head-row lock as the ledger.

(c1) one INSERT per transaction from several connections; (c2) ``unnest`` batches. Both write
into ``bench_events``, a table shaped like ``events`` (no trigger), chain a SHA-256 per row in
Python, and serialise on ``bench_head``; they send no NOTIFY and read no stream versions.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from harness.cpu import CpuGroups, CpuMeter, this_process
from harness.database import connected, connected_many
from harness.report import percentiles

BATCH = 100
STREAMS = 10_000
SOURCE_JSON = '{"name":"South China Morning Post","url":"https://www.scmp.com/tech"}'

# Same columns, constraints and indexes as `events`; LIKE copies no trigger.
CREATE_TABLES = """
CREATE TABLE bench_events (LIKE events INCLUDING ALL);
CREATE TABLE bench_head (LIKE ledger_head INCLUDING ALL);
INSERT INTO bench_head (position, hash, recorded_at)
VALUES (0, decode(repeat('00', 32), 'hex'), '1970-01-01T00:00:00Z');"""

_LOCK_HEAD = "SELECT position, hash FROM bench_head WHERE singleton FOR UPDATE"

_INSERT_ONE = """
WITH inserted AS (
    INSERT INTO bench_events (position, event_id, stream, stream_version, type, effective_date,
                              recorded_at, source, data, metadata, target_event_id, hash)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8::json, $9::json, NULL, NULL, $10)
)
UPDATE bench_head SET position = $1, hash = $10, recorded_at = $7 WHERE singleton"""

_INSERT_MANY = """
WITH inserted AS (
    INSERT INTO bench_events (position, event_id, stream, stream_version, type, effective_date,
                              recorded_at, source, data, metadata, target_event_id, hash)
    SELECT p, i, s, v, t, d, $7, src, dat, NULL, NULL, h
    FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::int[], $5::text[], $6::date[],
                $8::json[], $9::json[], $10::bytea[]) AS u(p, i, s, v, t, d, src, dat, h)
)
UPDATE bench_head SET position = $11, hash = $12, recorded_at = $7 WHERE singleton"""

Row = tuple[uuid.UUID, str, str, dt.date, str]


@dataclass
class Result:
    """One case's figures."""

    case: str
    what: str
    events_per_s: float
    requests_per_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    latency_source: str = ""
    ok: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    note: str = ""


class Contents:
    """Row content like the ledger's: canonical JSON text, streams spread over many companies."""

    def __init__(self) -> None:
        from events.chain import canonical_json

        self._canonical = canonical_json
        self._random = random.Random()
        self.versions: dict[str, int] = {}

    def make(self, n: int) -> Row:
        company = f"bench-{self._random.randint(1, STREAMS)}"
        data: dict[str, Any]
        if n % 2:
            data = {"company_id": company, "name": f"Bench Company {company}", "jurisdiction": "CN"}
            kind, date = "company_registered", dt.date(2019, 6, 1)
        else:
            value = f"{self._random.randint(1, 999_999_999)}000"
            data = {
                "company_id": company,
                "valuation": {"value": value, "currency": "USD"},
                "basis": "reported",
            }
            kind, date = "valuation_reported", dt.date(2023, 9, 15)
        return uuid.uuid4(), f"company:{company}", kind, date, self._canonical(data)


def _hash(
    previous: bytes, position: int, row: Row, version: int, recorded_at: dt.datetime
) -> bytes:
    from events.chain import chain, event_bytes

    event_id, stream, kind, date, data = row
    return chain(
        previous,
        event_bytes(
            position=position,
            event_id=event_id,
            stream=stream,
            stream_version=version,
            type=kind,
            schema_version=1,
            effective_date=date,
            recorded_at=recorded_at,
            source=SOURCE_JSON,
            data=data,
            metadata=None,
        ),
    )


async def _append_one(conn: Any, row: Row, contents: Contents) -> None:
    async with conn.transaction():
        head = await conn.fetchrow(_LOCK_HEAD)
        assert head is not None
        position = head["position"] + 1
        _, stream, kind, date, data = row
        version = contents.versions.get(stream, 0) + 1  # under the lock
        recorded_at = dt.datetime.now(dt.UTC)
        digest = _hash(bytes(head["hash"]), position, row, version, recorded_at)
        await conn.execute(
            _INSERT_ONE, position, row[0], stream, version, kind, date, recorded_at,
            SOURCE_JSON, data, digest,
        )  # fmt: skip
        contents.versions[stream] = version


async def _append_batch(conn: Any, rows: list[Row], contents: Contents) -> None:
    async with conn.transaction():
        head = await conn.fetchrow(_LOCK_HEAD)
        assert head is not None
        position, previous = head["position"], bytes(head["hash"])
        recorded_at = dt.datetime.now(dt.UTC)
        cols: list[list[Any]] = [[] for _ in range(9)]
        versions: dict[str, int] = {}
        for row in rows:
            event_id, stream, kind, date, data = row
            position += 1
            version = versions.get(stream, contents.versions.get(stream, 0)) + 1
            versions[stream] = version
            previous = _hash(previous, position, row, version, recorded_at)
            values = (position, event_id, stream, version, kind, date, SOURCE_JSON, data, previous)
            for col, value in zip(cols, values, strict=True):
                col.append(value)
        await conn.execute(_INSERT_MANY, *cols[:6], recorded_at, *cols[6:], position, previous)
        contents.versions.update(versions)


async def _timed_workers(
    url: str,
    seconds: float,
    connections: int,
    cpu: CpuGroups,
    step: Callable[[Any, int], Awaitable[tuple[int, float]]],
) -> tuple[list[float], int, float, dict[str, float]]:
    """Run ``step`` (which returns its events and its transaction's seconds) in a loop on each
    connection for ``seconds``; return the latencies, the events, the seconds and CPU shares."""
    latencies: list[float] = []
    done = 0
    async with connected_many(url, connections) as conns:
        loop = asyncio.get_running_loop()
        stop = loop.time() + seconds

        async def worker(conn: Any) -> None:
            nonlocal done
            n = 0
            while loop.time() < stop:
                count, took = await step(conn, n)
                n += count
                latencies.append(took)
                done += count

        meter = CpuMeter({**cpu, "client": this_process})
        with meter:
            began = time.perf_counter()
            await asyncio.gather(*(worker(c) for c in conns))
            elapsed = time.perf_counter() - began
    return latencies, done, elapsed, meter.percent


async def raw_single(
    url: str, seconds: float, connections: int, contents: Contents, cpu: CpuGroups
) -> Result:
    """(c1) one event per transaction, serialised on the head row, from ``connections``."""

    async def step(conn: Any, n: int) -> tuple[int, float]:
        row = contents.make(n + 1)
        started = time.perf_counter()
        await _append_one(conn, row, contents)
        return 1, time.perf_counter() - started

    latencies, done, elapsed, percent = await _timed_workers(url, seconds, connections, cpu, step)
    p50, p99 = percentiles(latencies)
    return Result(
        "c1",
        f"asyncpg, 1 event/txn, {connections} conns",
        done / elapsed,
        done / elapsed,
        p50,
        p99,
        "txn",
        done,
        cpu=percent,
    )


async def raw_batches(
    url: str, seconds: float, connections: int, contents: Contents, cpu: CpuGroups
) -> Result:
    """(c2) ``unnest`` batches of BATCH rows per transaction, serialised on the head row."""

    async def step(conn: Any, n: int) -> tuple[int, float]:
        rows = [contents.make(n + k) for k in range(1, BATCH + 1)]
        started = time.perf_counter()
        await _append_batch(conn, rows, contents)
        return BATCH, time.perf_counter() - started

    latencies, done, elapsed, percent = await _timed_workers(url, seconds, connections, cpu, step)
    p50, p99 = percentiles(latencies)
    return Result(
        "c2",
        f"asyncpg, unnest {BATCH}/txn, {connections} conn(s)",
        done / elapsed,
        done / elapsed / BATCH,
        p50,
        p99,
        "txn",
        done,
        cpu=percent,
    )


async def create_tables(url: str) -> None:
    """Create ``bench_events`` and ``bench_head`` beside the ledger's tables."""
    async with connected(url) as conn:
        await conn.execute(CREATE_TABLES)
