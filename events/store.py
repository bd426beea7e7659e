"""The append-only store on asyncpg: the statements of one append transaction, and the reads.

Why appends are serialised: a reader that tails a log by a sequence-assigned position can skip
an event. Two transactions draw positions 7 and 8; 8 commits first; a reader that has seen 8
moves its cursor past 7, which then commits and is never read. Every append transaction here
first locks the single row of ``ledger_head`` and draws positions from it, so the next
transaction cannot draw a position before this one commits: positions are gapless and commit
order equals position order. The same lock makes the hash chain simple (the previous hash is
the head's) and lets ``recorded_at`` be made monotonic (a transaction's ``now()`` is its start,
which can be older than the previous holder's, so the head's value is a floor).
The cost of serialising is paid back by group commit (events/writer.py).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence

import asyncpg
import msgspec

from events.chain import format_instant
from events.planning import GroupState, KnownEvent, fingerprint
from events.records import Receipt, RecordedEvent

Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

EVENT_COLUMNS = (
    "event_id, type, stream, stream_version, position, effective_date, recorded_at,"
    " source, data, metadata, schema_version, hash"
)


async def lock_head(conn: Connection) -> GroupState:
    """Lock the head row (serialising appends) and return the state to plan against."""
    row = await conn.fetchrow(
        "SELECT position, hash, recorded_at FROM ledger_head WHERE singleton FOR UPDATE"
    )
    assert row is not None, "ledger_head is missing its row: run `ledger migrate`"
    # clock_timestamp() is read after the lock is held, and floored by the previous holder's.
    now = await conn.fetchval("SELECT clock_timestamp()")
    return GroupState(
        position=row["position"],
        hash=bytes(row["hash"]),
        recorded_at=max(now, row["recorded_at"]),
        known={},
        versions={},
    )


async def load_known(conn: Connection, ids: Iterable[uuid.UUID], state: GroupState) -> None:
    """Load the given events, and the targets of corrections among them, into ``state``."""
    pending = {i for i in ids if i not in state.known}
    corrections: dict[uuid.UUID, uuid.UUID] = {}
    while pending:
        rows = await conn.fetch(
            f"SELECT {EVENT_COLUMNS}, target_event_id FROM events WHERE event_id = ANY($1::uuid[])",
            list(pending),
        )
        pending = set()
        for row in rows:
            state.known[row["event_id"]] = _known(row, row["type"])
            if row["type"] == "event_corrected":
                corrections[row["event_id"]] = row["target_event_id"]
                if row["target_event_id"] not in state.known:
                    pending.add(row["target_event_id"])
    # A correction carries a payload of its root's type: follow each chain down to its fact.
    for event_id in corrections:
        root, seen = event_id, set()
        while state.known[root].type == "event_corrected" and root not in seen:
            seen.add(root)
            root = corrections[root]
        known = state.known[event_id]
        state.known[event_id] = KnownEvent(
            known.event_id,
            known.type,
            known.stream,
            state.known[root].type,
            known.fingerprint,
            known.receipt,
        )


async def load_versions(conn: Connection, streams: Iterable[str], state: GroupState) -> None:
    """Load the current version of each stream into ``state`` (0 for a new stream)."""
    rows = await conn.fetch(
        """SELECT s.stream,
                  coalesce((SELECT max(e.stream_version) FROM events e
                            WHERE e.stream = s.stream), 0) AS version
           FROM unnest($1::text[]) AS s(stream)""",
        list(set(streams)),
    )
    state.versions.update((row["stream"], row["version"]) for row in rows)


async def write_rows(conn: Connection, state: GroupState) -> None:
    """Insert the planned rows, advance the head and notify listeners, in one statement."""
    rows = state.rows
    await conn.execute(
        """WITH inserted AS (
               INSERT INTO events (position, event_id, stream, stream_version, type,
                                   effective_date, recorded_at, source, data, metadata,
                                   target_event_id, hash)
               SELECT p, i, s, v, t, d, $12, src, dat, meta, tgt, h
               FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::int[], $5::text[],
                           $6::date[], $7::json[], $8::json[], $9::json[], $10::uuid[],
                           $11::bytea[])
                    AS u(p, i, s, v, t, d, src, dat, meta, tgt, h)
           ), head AS (
               UPDATE ledger_head SET position = $13, hash = $14, recorded_at = $12
               WHERE singleton
           )
           SELECT pg_notify('ledger_events', $13::text)""",
        [r.position for r in rows],
        [r.event_id for r in rows],
        [r.stream for r in rows],
        [r.stream_version for r in rows],
        [r.type for r in rows],
        [r.effective_date for r in rows],
        [r.source for r in rows],
        [r.data for r in rows],
        [r.metadata for r in rows],
        [r.target_event_id for r in rows],
        [r.hash for r in rows],
        state.recorded_at,
        state.position,
        state.hash,
    )


def _known(row: asyncpg.Record, root_type: str) -> KnownEvent:
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


async def read_after(
    conn: Connection,
    after: int,
    limit: int,
    types: Sequence[str] | None = None,
    stream: str | None = None,
) -> list[RecordedEvent]:
    """Return up to ``limit`` events after position ``after``, in position order."""
    rows = await conn.fetch(
        f"""SELECT {EVENT_COLUMNS} FROM events
            WHERE position > $1
              AND ($3::text[] IS NULL OR type = ANY($3::text[]))
              AND ($4::text IS NULL OR stream = $4)
            ORDER BY position LIMIT $2""",
        after,
        limit,
        list(types) if types else None,
        stream,
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
