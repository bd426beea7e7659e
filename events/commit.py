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

import operator
import uuid
from collections.abc import Iterable

import asyncpg

from events.log import EVENT_COLUMN_NAMES, Connection, known_event
from events.planning import GroupState, Row, after

# The columns a row of ``_LOAD`` may carry: an event's, its target and root (the fact at the
# bottom of its chain) with the root's type, a stream's version, the clock. Each part of the
# union names the ones it fills; the others are NULL.
_LOADED = (
    "kind",
    *EVENT_COLUMN_NAMES,
    "target_event_id",
    "root_event_id",
    "root_type",
    "version",
    "now",
)


def _part(**filled: str) -> str:
    return ", ".join(f"{filled.get(column, 'NULL')} AS {column}" for column in _LOADED)


_EVENT = {
    **{column: "e." + column for column in EVENT_COLUMN_NAMES},
    "kind": "'event'",
    "target_event_id": "e.target_event_id",
    "root_event_id": "e.root_event_id",
    "root_type": "r.type",
    "version": "(SELECT max(v.stream_version) FROM events v WHERE v.stream = e.stream)",
    "now": "NULL::timestamptz",
}
_STREAM_VERSION = (
    "coalesce((SELECT max(v.stream_version) FROM events v WHERE v.stream = s.stream), 0)"
)

# The events named by id are joined through unnest so that the plan is an index lookup per id
# even before the table has statistics; a stream's version is a backward scan of the
# (stream, stream_version) index. An amendment comes with the type of the fact at the bottom of
# its chain (its root_event_id, filled at append), so a chain of any length costs one lookup,
# and each event with the version of its stream, which an amendment of it will need. Whether a
# named event, or the fact it amends, is retracted is a lookup of the target_event_id index.
_LOAD = f"""
    SELECT {_part(**_EVENT)}
    FROM unnest($1::uuid[]) AS ids(id) JOIN events e ON e.event_id = ids.id
    LEFT JOIN events r ON r.event_id = e.root_event_id
    UNION ALL
    SELECT {_part(kind="'stream'", stream="s.stream", version=_STREAM_VERSION)}
    FROM unnest($2::text[]) AS s(stream)
    UNION ALL
    SELECT {_part(kind="'retracted'", target_event_id="r.target_event_id")}
    FROM unnest($1::uuid[]) AS ids(id) JOIN events e ON e.event_id = ids.id
    JOIN events r ON r.target_event_id IN (e.event_id, e.root_event_id)
                 AND r.type = 'event_retracted'
"""

# The same, with the head (unlocked) and the database clock.
_SNAPSHOT = f"""
    {_LOAD}
    UNION ALL
    SELECT {
    _part(
        kind="'head'",
        position="position",
        recorded_at="recorded_at",
        hash="hash",
        now="clock_timestamp()",
    )
}
    FROM ledger_head WHERE singleton
"""

# The stored columns of a planned row (events/planning.py, ``Row``, has a field of each name)
# and their types: the one list the INSERT, and its arguments, are made from.
ROW_COLUMNS = (
    ("position", "bigint"),
    ("event_id", "uuid"),
    ("stream", "text"),
    ("stream_version", "int"),
    ("type", "text"),
    ("effective_date", "date"),
    ("source", "json"),
    ("data", "json"),
    ("metadata", "json"),
    ("target_event_id", "uuid"),
    ("hash", "bytea"),
    ("root_event_id", "uuid"),
    ("fact", "text"),
)
_ARRAYS = len(ROW_COLUMNS)
# The parameters after the arrays: the group's recorded_at, the new head, the head planned on.
_RECORDED_AT, _POSITION, _HASH, _SEEN_POSITION, _SEEN_HASH = (
    f"${n}" for n in range(_ARRAYS + 1, _ARRAYS + 6)
)
_NAMES = ", ".join(name for name, _ in ROW_COLUMNS)
_INSERT = f"""
    INSERT INTO events ({_NAMES}, recorded_at)
    SELECT {_NAMES}, {_RECORDED_AT}
    FROM unnest({", ".join(f"${n}::{t}[]" for n, (_, t) in enumerate(ROW_COLUMNS, start=1))})
         AS u({_NAMES})
"""

# The UPDATE matches the head row whatever its content, so it always waits for a concurrent
# holder and then sees the row's latest version: a condition in its WHERE clause would be
# tested against this statement's snapshot and could skip the row without waiting. The
# condition is therefore in the SET, and RETURNING says whether the head moved.
_UNCHANGED = f"position = {_SEEN_POSITION} AND hash = {_SEEN_HASH}"
_WRITE_IF_UNCHANGED = f"""
    WITH head AS (
        UPDATE ledger_head SET
            position = CASE WHEN {_UNCHANGED} THEN {_POSITION} ELSE position END,
            hash = CASE WHEN {_UNCHANGED} THEN {_HASH} ELSE hash END,
            recorded_at = CASE WHEN {_UNCHANGED} THEN {_RECORDED_AT} ELSE recorded_at END
        WHERE singleton
        RETURNING position = {_POSITION} AND hash = {_HASH} AS moved
    ), inserted AS (
        {_INSERT} WHERE EXISTS (SELECT FROM head WHERE moved)
    )
    SELECT pg_notify('ledger_events', {_POSITION}::text) FROM head WHERE moved
"""

_WRITE = f"""
    WITH inserted AS ({_INSERT}), head AS (
        UPDATE ledger_head SET position = {_POSITION}, hash = {_HASH}, recorded_at = {_RECORDED_AT}
        WHERE singleton
    )
    SELECT pg_notify('ledger_events', {_POSITION}::text)
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
    _absorb(rows, state)
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
    _absorb(await conn.fetch(_LOAD, list(ids), list(streams)), state)


def _absorb(rows: list[asyncpg.Record], state: GroupState) -> None:
    """Take loaded rows into ``state``: the events, the versions of their streams, retractions."""
    for row in rows:
        if row["kind"] == "stream":
            state.versions[row["stream"]] = row["version"]
        elif row["kind"] == "retracted":
            state.retracted.add(row["target_event_id"])
        elif row["kind"] == "event":
            state.known[row["event_id"]] = known_event(row)
            state.versions.setdefault(row["stream"], row["version"])


async def write_if_unchanged(conn: Connection, state: GroupState, seen: tuple[int, bytes]) -> bool:
    """Append the planned rows if the head is still ``seen`` (position, hash); say if it was."""
    row = await conn.fetchrow(_WRITE_IF_UNCHANGED, *_arguments(state), *seen)
    return row is not None


async def write_rows(conn: Connection, state: GroupState) -> None:
    """Append the planned rows under a head already locked by this transaction."""
    await conn.execute(_WRITE, *_arguments(state))


def _arguments(state: GroupState) -> list[object]:
    rows = state.rows
    arrays: list[object] = [[getattr(r, name) for r in rows] for name, _ in ROW_COLUMNS]
    return [*arrays, state.recorded_at, state.position, state.hash]


# A bulk import's rows go in by binary COPY, of the same columns as _INSERT's arrays.
COPY_COLUMNS = tuple(name for name, _ in ROW_COLUMNS)
row_values = operator.attrgetter(*COPY_COLUMNS)

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
        "events", records=records, columns=[*COPY_COLUMNS, "recorded_at"]
    )


async def move_head(conn: Connection, last: Row, recorded_at: object) -> None:
    """Move the head, locked by this transaction, to ``last`` and announce the new events."""
    await conn.execute(_MOVE_HEAD, last.position, last.hash, recorded_at)
