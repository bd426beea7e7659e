"""Reading the log: the head, events by position, stream or id, the rules, and the walks."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Sequence

import asyncpg
import msgspec

from events.chain import format_instant
from events.planning import KnownEvent, fingerprint
from events.records import HistoryRow, Receipt, RecordedEvent, StoredRow
from events.streams import EVENT_CORRECTED, ROUND_ANNOUNCED, RULE_STREAMS_LIKE

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


# One statement per combination of filters (types given, stream given), so that each keeps a
# plan that fits it (a single statement with "$3 IS NULL OR ..." would settle on one generic
# plan for all of them). Their plans are under test (tests/integration/test_query_plans.py).
READ_AFTER = {
    filters: f"""SELECT {EVENT_COLUMNS} FROM events
            WHERE position > $1{condition}
            ORDER BY position LIMIT $2"""
    for filters, condition in {
        (False, False): "",
        (True, False): " AND type = ANY($3::text[])",
        (False, True): " AND stream = $3",
        (True, True): " AND type = ANY($3::text[]) AND stream = $4",
    }.items()
}

READ_STREAM = f"""SELECT {EVENT_COLUMNS} FROM events
            WHERE stream = $1 AND stream_version > $2
            ORDER BY stream_version LIMIT $3"""


async def read_after(
    conn: Connection,
    after: int,
    limit: int,
    types: Sequence[str] | None = None,
    stream: str | None = None,
) -> list[RecordedEvent]:
    """Return up to ``limit`` events after position ``after``, in position order."""
    arguments: list[object] = [after, limit]
    if types:
        arguments.append(list(types))
    if stream is not None:
        arguments.append(stream)
    rows = await conn.fetch(READ_AFTER[(bool(types), stream is not None)], *arguments)
    return [to_recorded(row) for row in rows]


async def read_stream(
    conn: Connection, stream: str, after_version: int = 0, limit: int = 1000
) -> list[RecordedEvent]:
    """Return a stream's events after ``after_version``, in stream order."""
    rows = await conn.fetch(READ_STREAM, stream, after_version, limit)
    return [to_recorded(row) for row in rows]


async def get_event(conn: Connection, event_id: uuid.UUID) -> RecordedEvent | None:
    """Return one event by id, or None."""
    row = await conn.fetchrow(f"SELECT {EVENT_COLUMNS} FROM events WHERE event_id = $1", event_id)
    return to_recorded(row) if row is not None else None


# The head's position as a scalar subquery, for the statements that must read it in the same
# snapshot as what they write (a webhook's cursor starts there; the fan-out stops there).
HEAD_POSITION = "SELECT position FROM ledger_head"


async def head(conn: Connection) -> tuple[int, bytes, dt.datetime]:
    """Return the head's position, hash and recorded_at, without locking it."""
    row = await conn.fetchrow("SELECT position, hash, recorded_at FROM ledger_head")
    assert row is not None
    return row["position"], bytes(row["hash"]), row["recorded_at"]


async def head_position(conn: Connection) -> int:
    """Return the head position of the log."""
    position: int = await conn.fetchval(HEAD_POSITION)
    return position


async def recorded_ids(conn: Connection, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Return which of ``ids`` are recorded events."""
    rows = await conn.fetch("SELECT event_id FROM events WHERE event_id = ANY($1::uuid[])", ids)
    return {row["event_id"] for row in rows}


async def read_rules(conn: Connection) -> list[HistoryRow]:
    """Return every event of the export-rule streams, in position order."""
    rows = await conn.fetch(
        f"""SELECT event_id, type, position, recorded_at, effective_date, data::text AS data
           FROM events WHERE stream LIKE '{RULE_STREAMS_LIKE}' ORDER BY position"""
    )
    return [
        HistoryRow(
            r["event_id"],
            r["type"],
            r["position"],
            r["recorded_at"],
            r["effective_date"],
            r["data"],
        )
        for r in rows
    ]


async def stored_rows(
    conn: Connection, last: int, chunk: int, after: int = 0
) -> AsyncIterator[list[StoredRow]]:
    """Yield the stored rows in (after, last], in position order, ``chunk`` at a time."""
    while True:
        rows = await conn.fetch(
            """SELECT position, event_id, stream, stream_version, type, schema_version,
                      effective_date, recorded_at, source::text AS source, data::text AS data,
                      metadata::text AS metadata, hash
               FROM events WHERE position > $1 AND position <= $3 ORDER BY position LIMIT $2""",
            after,
            chunk,
            last,
        )
        if not rows:
            return
        yield [
            StoredRow(
                position=r["position"],
                event_id=r["event_id"],
                stream=r["stream"],
                stream_version=r["stream_version"],
                type=r["type"],
                schema_version=r["schema_version"],
                effective_date=r["effective_date"],
                recorded_at=r["recorded_at"],
                source=r["source"],
                data=r["data"],
                metadata=r["metadata"],
                hash=bytes(r["hash"]),
            )
            for r in rows
        ]
        after = rows[-1]["position"]


# Only what the read models need (projections/read_models.py): the payloads of rounds and
# corrections, and of nothing else. A rebuild reads the whole log, and most of its time was
# spent turning columns it never used into Python objects.
_PROJECTED = f"""
    SELECT stream, type, position,
           CASE WHEN type IN ('{ROUND_ANNOUNCED}', '{EVENT_CORRECTED}') THEN data::text END AS data
    FROM events WHERE position > $1 AND position <= $2 ORDER BY position LIMIT $3
"""


async def read_projected(
    conn: Connection, after: int, until: int, limit: int
) -> list[asyncpg.Record]:
    """Return ``(stream, type, position, data)`` of up to ``limit`` events in (after, until]."""
    rows: list[asyncpg.Record] = await conn.fetch(_PROJECTED, after, until, limit)
    return rows


# One statement, so the streams and the positions come from one snapshot. The last position
# known at an instant is the newest entry of the (recorded_at, position) index at or before it,
# since recorded_at never decreases in position order.
#
# Each parameter is read through a scalar subquery, which hides its value from the planner: the
# plan is then the same for every value, PostgreSQL keeps one generic plan for the prepared
# statement, and a read costs about a third of what it did when every execution was planned
# afresh for its values (the plans were as good; planning took longer than running them).
READ_STREAMS = f"""
    SELECT 's' AS part, e.stream, e.stream_version, e.event_id, e.type, e.position,
           e.recorded_at, e.effective_date, e.data::text AS data
    FROM unnest((SELECT $1::text[]), (SELECT $2::integer[])) AS s(stream, after)
    JOIN events e ON e.stream = s.stream AND e.stream_version > s.after
    UNION ALL
    SELECT 'r', NULL, NULL, NULL, NULL,
           (SELECT max(e.position) FROM events e WHERE e.stream LIKE '{RULE_STREAMS_LIKE}'),
           NULL, NULL, NULL
    UNION ALL
    (SELECT 'p', NULL, NULL, NULL, NULL, e.position, NULL, NULL, NULL FROM events e
     WHERE e.recorded_at <= (SELECT $3::timestamptz)
     ORDER BY e.recorded_at DESC, e.position DESC LIMIT 1)
    UNION ALL
    SELECT 'h', NULL, NULL, NULL, NULL, position, recorded_at, NULL, NULL FROM ledger_head
"""


async def read_streams(
    conn: Connection, streams: list[str], after: list[int], known_at: dt.datetime
) -> list[asyncpg.Record]:
    """Return in one snapshot the streams' events after the given versions, and the positions.

    Each row has a ``part``: ``s`` an event of a stream (``stream``, ``stream_version``,
    ``event_id``, ``type``, ``position``, ``recorded_at``, ``effective_date``, ``data``), ``r``
    the position of the latest rule event, ``p`` the last position recorded by ``known_at``,
    ``h`` the head's position and recorded_at.
    """
    rows: list[asyncpg.Record] = await conn.fetch(READ_STREAMS, streams, after, known_at)
    return rows


async def read_rule_events(conn: Connection, until: int) -> list[RecordedEvent]:
    """Return every event of the export-rule streams up to position ``until``, in order."""
    rows = await conn.fetch(
        f"""SELECT {EVENT_COLUMNS} FROM events
           WHERE stream LIKE '{RULE_STREAMS_LIKE}' AND position <= $1 ORDER BY position""",
        until,
    )
    return [to_recorded(row) for row in rows]
