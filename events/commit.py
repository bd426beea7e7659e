"""The statements that append a group of events: serialised on the head row, two round trips.

Why appends are serialised: a reader that tails a log by a sequence-assigned position can skip
an event. Two transactions draw positions 7 and 8; 8 commits first; a reader that has seen 8
moves its cursor past 7, which then commits and is never read. Here every append changes the
single row of ``ledger_head`` and draws its positions from it, and a row can be changed by one
transaction at a time, so positions are gapless and position order is commit order. The same
row holds the previous hash of the chain and the previous ``recorded_at``, which floors the
next one so that ``recorded_at`` never decreases in position order (a transaction's ``now()``
is its start, which can be older than the previous holder's).

How a group is appended without holding the lock across round trips (the optimistic path):

1. ``snapshot`` reads, in one statement and without locking, the head, the database clock,
   the events the group names (idempotent retries, targets of amendments) and the versions of
   the streams it touches. The group is planned in Python against that snapshot.
2. ``write_if_unchanged`` is one autocommit statement: it moves the head only if its
   position and hash are still the ones the group was planned on, and inserts the rows only
   if the head moved. The UPDATE waits for any concurrent holder of the row and decides on
   the row's latest version, so if another process appended in between, nothing is written.
   Every append moves the head and the hash covers the whole chain, so a head that is still
   the planned one proves that the snapshot was current when the rows went in.

The writer (events/writer.py) may send a group's write while the previous group's write is
still committing: the group was planned on top of the previous one, and its UPDATE waits on
the head row until the previous commit and then finds exactly the head it expects.

When the head did move otherwise (several processes appending to one database), the group is
planned again under the lock (``lock_head`` then ``load`` in one transaction), which always
succeeds.
"""

from __future__ import annotations

import dataclasses
import operator
import uuid
from collections.abc import Iterable

import asyncpg

from events.log import EVENT_COLUMNS, Connection, known_event
from events.planning import GroupState, KnownEvent, Row, after
from events.streams import EVENT_CORRECTED

# The events named by id are joined through unnest so that the plan is an index lookup per id
# even before the table has statistics; a stream's version is a backward scan of the
# (stream, stream_version) index.
_LOAD = f"""
    SELECT 'event' AS kind, {", ".join("e." + c.strip() for c in EVENT_COLUMNS.split(","))},
           e.target_event_id, NULL::integer AS version, NULL::timestamptz AS now
    FROM unnest($1::uuid[]) AS ids(id) JOIN events e ON e.event_id = ids.id
    UNION ALL
    SELECT 'stream', NULL, NULL, s.stream, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           NULL, coalesce((SELECT max(v.stream_version) FROM events v WHERE v.stream = s.stream),
                          0), NULL
    FROM unnest($2::text[]) AS s(stream)
"""

# The same, with the head (unlocked) and the database clock.
_SNAPSHOT = f"""
    {_LOAD}
    UNION ALL
    SELECT 'head', NULL, NULL, NULL, NULL, position, NULL, recorded_at, NULL, NULL, NULL, NULL,
           hash, NULL, NULL, clock_timestamp()
    FROM ledger_head WHERE singleton
"""

_INSERT = """
    INSERT INTO events (position, event_id, stream, stream_version, type, effective_date,
                        recorded_at, source, data, metadata, target_event_id, hash)
    SELECT p, i, s, v, t, d, $12, src, dat, meta, tgt, h
    FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::int[], $5::text[], $6::date[],
                $7::json[], $8::json[], $9::json[], $10::uuid[], $11::bytea[])
         AS u(p, i, s, v, t, d, src, dat, meta, tgt, h)
"""

# The UPDATE matches the head row whatever its content, so it always waits for a concurrent
# holder and then sees the row's latest version: a condition in its WHERE clause would be
# tested against this statement's snapshot and could skip the row without waiting. The
# condition is therefore in the SET, and RETURNING says whether the head moved.
_WRITE_IF_UNCHANGED = f"""
    WITH head AS (
        UPDATE ledger_head SET
            position = CASE WHEN position = $15 AND hash = $16 THEN $13 ELSE position END,
            hash = CASE WHEN position = $15 AND hash = $16 THEN $14 ELSE hash END,
            recorded_at = CASE WHEN position = $15 AND hash = $16 THEN $12 ELSE recorded_at END
        WHERE singleton
        RETURNING position = $13 AND hash = $14 AS moved
    ), inserted AS (
        {_INSERT} WHERE EXISTS (SELECT FROM head WHERE moved)
    )
    SELECT pg_notify('ledger_events', $13::text) FROM head WHERE moved
"""

_WRITE = f"""
    WITH inserted AS ({_INSERT}), head AS (
        UPDATE ledger_head SET position = $13, hash = $14, recorded_at = $12 WHERE singleton
    )
    SELECT pg_notify('ledger_events', $13::text)
"""


async def snapshot(
    conn: Connection, ids: Iterable[uuid.UUID], streams: Iterable[str]
) -> GroupState:
    """Read, without locking, everything a group needs to be planned."""
    rows = await conn.fetch(_SNAPSHOT, list(ids), list(streams))
    (head,) = (row for row in rows if row["kind"] == "head")
    state = GroupState(
        position=head["position"],
        hash=bytes(head["hash"]),
        recorded_at=after(head["recorded_at"], head["now"]),
        known={},
        versions={},
    )
    await _absorb(conn, rows, state)
    return state


async def lock_head(conn: Connection) -> GroupState:
    """Lock the head row for this transaction and return the state to plan against."""
    row = await conn.fetchrow(
        "SELECT position, hash, recorded_at, clock_timestamp() AS now"
        " FROM ledger_head WHERE singleton FOR UPDATE"
    )
    assert row is not None, "ledger_head is missing its row: run `ledger migrate`"
    return GroupState(
        position=row["position"],
        hash=bytes(row["hash"]),
        recorded_at=after(row["recorded_at"], row["now"]),
        known={},
        versions={},
    )


async def load(
    conn: Connection, ids: Iterable[uuid.UUID], streams: Iterable[str], state: GroupState
) -> None:
    """Load the given events and stream versions into ``state``."""
    await _absorb(conn, await conn.fetch(_LOAD, list(ids), list(streams)), state)


async def _absorb(conn: Connection, rows: list[asyncpg.Record], state: GroupState) -> None:
    """Take loaded rows into ``state``, then load what they lead to.

    Corrections bring in their targets (down to the original fact, whose type a correction's
    payload must have), and every loaded event brings in its stream's version, which an
    amendment of it will need.
    """
    corrections: dict[uuid.UUID, uuid.UUID] = {}
    while rows:
        more_ids: set[uuid.UUID] = set()
        more_streams: set[str] = set()
        for row in rows:
            if row["kind"] == "stream":
                state.versions[row["stream"]] = row["version"]
            elif row["kind"] == "event":
                state.known[row["event_id"]] = known_event(row, row["type"])
                more_streams.add(row["stream"])
                if row["type"] == EVENT_CORRECTED:
                    corrections[row["event_id"]] = row["target_event_id"]
                    more_ids.add(row["target_event_id"])
        more_ids -= state.known.keys()
        more_streams -= state.versions.keys()
        rows = (
            await conn.fetch(_LOAD, list(more_ids), list(more_streams))
            if more_ids or more_streams
            else []
        )
    _resolve_root_types(corrections, state)


def _resolve_root_types(corrections: dict[uuid.UUID, uuid.UUID], state: GroupState) -> None:
    """Give each loaded correction the type of the fact at the bottom of its chain."""
    for event_id in corrections:
        root, seen = event_id, set()
        while state.known[root].type == EVENT_CORRECTED and root not in seen:
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


async def write_if_unchanged(conn: Connection, state: GroupState, seen: tuple[int, bytes]) -> bool:
    """Append the planned rows if the head is still ``seen`` (position, hash); say if it was."""
    row = await conn.fetchrow(_WRITE_IF_UNCHANGED, *_arguments(state), *seen)
    return row is not None


async def write_rows(conn: Connection, state: GroupState) -> None:
    """Append the planned rows under a head already locked by this transaction."""
    await conn.execute(_WRITE, *_arguments(state))


def _arguments(state: GroupState) -> list[object]:
    rows = state.rows
    return [
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
    ]


# A bulk import's rows go in by binary COPY. Row's fields are named after the columns they
# fill, so a column added to Row reaches the bulk path as it reaches _INSERT's arrays.
ROW_COLUMNS = tuple(field.name for field in dataclasses.fields(Row))
row_values = operator.attrgetter(*ROW_COLUMNS)

_MOVE_HEAD = """
    WITH head AS (
        UPDATE ledger_head SET position = $1, hash = $2, recorded_at = $3 WHERE singleton
    )
    SELECT pg_notify('ledger_events', $1::text)
"""


async def copy_rows(conn: Connection, rows: list[Row], recorded_at: object) -> None:
    """Append planned rows by binary COPY, under a head locked by this transaction.

    The head must be moved to the last of them (:func:`move_head`) in the same transaction.
    """
    records = [(*row_values(row), recorded_at) for row in rows]
    await conn.copy_records_to_table(
        "events", records=records, columns=[*ROW_COLUMNS, "recorded_at"]
    )


async def move_head(conn: Connection, last: Row, recorded_at: object) -> None:
    """Move the head, locked by this transaction, to ``last`` and announce the new events."""
    await conn.execute(_MOVE_HEAD, last.position, last.hash, recorded_at)
