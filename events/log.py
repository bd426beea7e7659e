"""Reading the append-only store: events by position, by stream, by id, and the head."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

import asyncpg
import msgspec

from events.chain import format_instant
from events.planning import KnownEvent, fingerprint
from events.records import Receipt, RecordedEvent

Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

EVENT_COLUMNS = (
    "event_id, type, stream, stream_version, position, effective_date, recorded_at,"
    " source, data, metadata, schema_version, hash"
)


def known_event(row: asyncpg.Record, root_type: str) -> KnownEvent:
    """Turn a stored row into what the planner knows of it: its receipt and fingerprint."""
    receipt = Receipt(
        event_id=row["event_id"],
        stream=row["stream"],
        stream_version=row["stream_version"],
        position=row["position"],
        recorded_at=format_instant(row["recorded_at"]),
        hash=bytes(row["hash"]).hex(),
    )
    digest = fingerprint(
        row["type"], row["effective_date"], row["source"], row["data"], row["metadata"]
    )
    return KnownEvent(row["event_id"], row["type"], row["stream"], root_type, digest, receipt)


def to_recorded(row: asyncpg.Record) -> RecordedEvent:
    """Turn a row of ``EVENT_COLUMNS`` into the event as the ledger shows it."""
    metadata = row["metadata"]
    return RecordedEvent(
        event_id=row["event_id"],
        type=row["type"],
        stream=row["stream"],
        stream_version=row["stream_version"],
        position=row["position"],
        effective_date=row["effective_date"],
        recorded_at=format_instant(row["recorded_at"]),
        source=msgspec.Raw(row["source"].encode()),
        data=msgspec.Raw(row["data"].encode()),
        metadata=msgspec.Raw(metadata.encode()) if metadata is not None else None,
        schema_version=row["schema_version"],
        hash=bytes(row["hash"]).hex(),
    )


# One statement per combination of filters, so that each keeps a plan that fits it (a single
# statement with "$3 IS NULL OR ..." would settle on one generic plan for all of them).
_READ_AFTER = {
    (False, False): "",
    (True, False): " AND type = ANY($3::text[])",
    (False, True): " AND stream = $4",
    (True, True): " AND type = ANY($3::text[]) AND stream = $4",
}


async def read_after(
    conn: Connection,
    after: int,
    limit: int,
    types: Sequence[str] | None = None,
    stream: str | None = None,
) -> list[RecordedEvent]:
    """Return up to ``limit`` events after position ``after``, in position order."""
    condition = _READ_AFTER[(bool(types), stream is not None)]
    arguments: list[object] = [after, limit]
    if types:
        arguments.append(list(types))
    if stream is not None:
        if not types:
            condition = condition.replace("$4", "$3")
        arguments.append(stream)
    rows = await conn.fetch(
        f"""SELECT {EVENT_COLUMNS} FROM events
            WHERE position > $1{condition}
            ORDER BY position LIMIT $2""",
        *arguments,
    )
    return [to_recorded(row) for row in rows]


async def read_stream(
    conn: Connection, stream: str, after_version: int = 0, limit: int = 1000
) -> list[RecordedEvent]:
    """Return a stream's events after ``after_version``, in stream order."""
    rows = await conn.fetch(
        f"""SELECT {EVENT_COLUMNS} FROM events
            WHERE stream = $1 AND stream_version > $2
            ORDER BY stream_version LIMIT $3""",
        stream,
        after_version,
        limit,
    )
    return [to_recorded(row) for row in rows]


async def get_event(conn: Connection, event_id: uuid.UUID) -> RecordedEvent | None:
    """Return one event by id, or None."""
    row = await conn.fetchrow(f"SELECT {EVENT_COLUMNS} FROM events WHERE event_id = $1", event_id)
    return to_recorded(row) if row is not None else None


async def head(conn: Connection) -> tuple[int, bytes, dt.datetime]:
    """Return the head's position, hash and recorded_at, without locking it."""
    row = await conn.fetchrow("SELECT position, hash, recorded_at FROM ledger_head")
    assert row is not None
    return row["position"], bytes(row["hash"]), row["recorded_at"]
