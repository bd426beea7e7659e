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
from events.streams import AMENDMENT_TYPES, EVENT_CORRECTED, ROUND_ANNOUNCED, RULE_STREAMS_LIKE

Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

EVENT_COLUMN_NAMES = (
    "event_id",
    "type",
    "stream",
    "stream_version",
    "position",
    "effective_date",
    "recorded_at",
    "source",
    "data",
    "metadata",
    "schema_version",
    "hash",
    "fact",
)
EVENT_COLUMNS = ", ".join(EVENT_COLUMN_NAMES)


def known_event(row: asyncpg.Record) -> KnownEvent:
    """Turn a stored row into what the planner knows of it: its root, receipt and fingerprint.

    The row carries ``root_event_id`` and ``root_type`` (the fact at the bottom of an
    amendment's chain, or nothing for a fact). A retraction keeps its own type as its root
    type: nothing may amend it.
    """
    root_id = row["root_event_id"] or row["event_id"]
    root_type = row["root_type"] if row["type"] == EVENT_CORRECTED else row["type"]
    receipt = Receipt(
        event_id=row["event_id"],
        stream=row["stream"],
        stream_version=row["stream_version"],
        position=row["position"],
        recorded_at=format_instant(row["recorded_at"]),
        hash=bytes(row["hash"]).hex(),
    )
    digest = fingerprint(
        row["type"], row["effective_date"], row["source"], row["data"], row["metadata"], row["fact"]
    )
    return KnownEvent(
        row["event_id"], row["type"], row["stream"], root_type, digest, receipt, root_id
    )


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
        fact=row["fact"],
    )


# A page stops at ``limit`` events or once it holds PAGE_BYTES of stored JSON (data, source and
# metadata), whichever comes first, and always holds at least one event: a thousand events of
# a few hundred KB each would otherwise make one answer of hundreds of MB. The cut is made in
# the statement, over a running sum of sizes that PostgreSQL reads without detoasting the
# values, so the rows past it are never sent. Callers continue after the last event, so a
# page cut short by bytes costs nothing but another read.
PAGE_BYTES = 4 * 1024 * 1024
_SIZE = (
    "octet_length(data::text) + octet_length(source::text)"
    " + coalesce(octet_length(metadata::text), 0)"
)


def _paged(order: str, where: str, limit: str) -> str:
    """Wrap a read in the byte bound: the rows of its page until PAGE_BYTES are reached."""
    return f"""SELECT {EVENT_COLUMNS} FROM (
            SELECT {EVENT_COLUMNS},
                   sum({_SIZE}) OVER (ORDER BY {order} ROWS UNBOUNDED PRECEDING) - {_SIZE}
                       AS before
            FROM events WHERE {where} ORDER BY {order} LIMIT {limit}) page
        WHERE before < {PAGE_BYTES} ORDER BY {order}"""


def page_is_full(events: Sequence[RecordedEvent], limit: int) -> bool:
    """Say whether a page stopped at its bounds, so that more may follow it."""
    size = sum(
        len(e.data) + len(e.source) + (len(e.metadata) if e.metadata is not None else 0)
        for e in events
    )
    return len(events) >= limit or size >= PAGE_BYTES


# One statement per combination of filters (types given, stream given), so that each keeps a
# plan that fits it (a single statement with "$3 IS NULL OR ..." would settle on one generic
# plan for all of them). Their plans are under test (tests/integration/test_query_plans.py).
READ_AFTER = {
    filters: _paged("position", f"position > $1{condition}", "$2")
    for filters, condition in {
        (False, False): "",
        (True, False): " AND type = ANY($3::text[])",
        (False, True): " AND stream = $3",
        (True, True): " AND type = ANY($3::text[]) AND stream = $4",
    }.items()
}

READ_STREAM = _paged("stream_version", "stream = $1 AND stream_version > $2", "$3")


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


async def committed_for(conn: Connection, position: int) -> float:
    """Return how long ago, by this database's clock, the event at ``position`` was recorded."""
    seconds = await conn.fetchval(
        "SELECT extract(epoch FROM clock_timestamp() - recorded_at)::float8"
        " FROM events WHERE position = $1",
        position,
    )
    return max(0.0, float(seconds or 0.0))


async def recorded_ids(conn: Connection, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Return which of ``ids`` are recorded events."""
    rows = await conn.fetch("SELECT event_id FROM events WHERE event_id = ANY($1::uuid[])", ids)
    return {row["event_id"] for row in rows}


# What a fold needs of a report's source, read in the statement (the source's JSON text is
# parsed by PostgreSQL, which costs less than handing the text over and decoding it here).
SOURCE_FIELDS = (
    "e.source ->> 'name' AS source_name, e.source ->> 'url' AS source_url,"
    " (e.source ->> 'published_at')::timestamptz AS published_at"
)


def history_row(row: asyncpg.Record) -> HistoryRow:
    """Turn a row read for the folds (``SOURCE_FIELDS`` and the fact key) into a HistoryRow."""
    return HistoryRow(
        row["event_id"],
        row["type"],
        row["position"],
        row["recorded_at"],
        row["effective_date"],
        row["data"],
        row["source_name"],
        row["source_url"],
        row["published_at"],
        row["fact"] or "",
    )


async def read_rules(conn: Connection) -> list[HistoryRow]:
    """Return every event of the export-rule streams, in position order."""
    rows = await conn.fetch(
        f"""SELECT e.event_id, e.type, e.position, e.recorded_at, e.effective_date,
                  e.data::text AS data, {SOURCE_FIELDS}, e.fact
           FROM events e WHERE e.stream LIKE '{RULE_STREAMS_LIKE}' ORDER BY e.position"""
    )
    return [history_row(r) for r in rows]


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
           e.recorded_at, e.effective_date, e.data::text AS data, {SOURCE_FIELDS}, e.fact
    FROM unnest((SELECT $1::text[]), (SELECT $2::integer[])) AS s(stream, after)
    JOIN events e ON e.stream = s.stream AND e.stream_version > s.after
    UNION ALL
    SELECT 'r', NULL, NULL, NULL, NULL,
           (SELECT max(e.position) FROM events e WHERE e.stream LIKE '{RULE_STREAMS_LIKE}'),
           NULL, NULL, NULL, NULL, NULL, NULL, NULL
    UNION ALL
    (SELECT 'p', NULL, NULL, NULL, NULL, e.position, NULL, NULL, NULL, NULL, NULL, NULL, NULL
     FROM events e
     WHERE e.recorded_at <= (SELECT $3::timestamptz)
     ORDER BY e.recorded_at DESC, e.position DESC LIMIT 1)
    UNION ALL
    SELECT 'h', NULL, NULL, NULL, NULL, position,
           CASE WHEN position > 0 THEN recorded_at ELSE statement_timestamp() END,
           (statement_timestamp() AT TIME ZONE 'UTC')::date, NULL, NULL, NULL, NULL, NULL
    FROM ledger_head
"""


async def read_streams(
    conn: Connection, streams: list[str], after: list[int], known_at: dt.datetime
) -> list[asyncpg.Record]:
    """Return in one snapshot the streams' events after the given versions, and the positions.

    Each row has a ``part``: ``s`` an event of a stream (``stream``, ``stream_version``,
    ``event_id``, ``type``, ``position``, ``recorded_at``, ``effective_date``, ``data``, the
    source's ``source_name``, ``source_url`` and ``published_at``, and the ``fact`` key), ``r``
    the position of the latest rule event, ``p`` the last position recorded by ``known_at``,
    ``h`` the head's position and recorded_at (the database's time for an empty log), and
    the database's date in UTC (as
    ``effective_date``): the same clock that stamps ``recorded_at``.
    """
    rows: list[asyncpg.Record] = await conn.fetch(READ_STREAMS, streams, after, known_at)
    return rows


# The sources in name order, each with how many reports (not amendments) it gave: a walk of the
# (source name, type) index that stops after ``limit`` names. One statement per filter, as
# READ_AFTER, so that each keeps its plan; ``name`` matches anywhere in the name, ignoring case.
_SOURCE_NAME = "(e.source ->> 'name')"
_REPORTS_ONLY = "e.type NOT IN ({})".format(", ".join(f"'{t}'" for t in sorted(AMENDMENT_TYPES)))
READ_SOURCES = {
    filtered: f"""SELECT {_SOURCE_NAME} AS name, count(*) AS reports FROM events e
            WHERE {_SOURCE_NAME} > $1 AND {_REPORTS_ONLY}{condition}
            GROUP BY 1 ORDER BY 1 LIMIT $2"""
    for filtered, condition in {
        False: "",
        True: f" AND strpos(lower({_SOURCE_NAME}), lower($3)) > 0",
    }.items()
}


async def read_sources(
    conn: Connection, after: str, limit: int, name: str | None = None
) -> list[tuple[str, int]]:
    """Return up to ``limit`` sources named after ``after`` and their numbers of reports."""
    arguments: list[object] = [after, limit]
    if name is not None:
        arguments.append(name)
    rows = await conn.fetch(READ_SOURCES[name is not None], *arguments)
    return [(row["name"], row["reports"]) for row in rows]
