"""Reading what the ledger knew at an instant: streams and the log's position, in one go."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from msgspec import Struct

from events.store import Connection

RULE_STREAMS = "export-rule:%"


class HistoryRow(Struct, frozen=True, gc=False):
    """One stored event as the folds need it: ids, times and the payload text.

    A Struct rather than a dataclass: a query builds a hundred of them, and msgspec builds
    them several times faster (and keeps them out of the garbage collector's way).
    """

    event_id: uuid.UUID
    type: str
    position: int
    recorded_at: dt.datetime
    effective_date: dt.date
    data: str


@dataclass
class History:
    """Streams as known at an instant, the export rules, and the log position they reflect."""

    streams: dict[str, list[HistoryRow]] = field(default_factory=dict)
    position: int = 0
    rules_position: int = 0
    known_at: dt.datetime | None = None


# One statement, so the streams and the positions come from one snapshot. The last
# position known at an instant is the newest entry of the (recorded_at, position) index at or
# before it, since recorded_at never decreases in position order.
_HISTORY = """
    SELECT 's' AS part, e.stream, e.event_id, e.type, e.position, e.recorded_at,
           e.effective_date, e.data::text AS data
    FROM unnest($1::text[]) AS s(stream) JOIN events e ON e.stream = s.stream
    WHERE e.recorded_at <= $2
    UNION ALL
    SELECT 'r', NULL, NULL, NULL,
           (SELECT max(e.position) FROM events e WHERE e.stream LIKE 'export-rule:%'),
           NULL, NULL, NULL
    UNION ALL
    (SELECT 'p', NULL, NULL, NULL, e.position, NULL, NULL, NULL FROM events e
     WHERE e.recorded_at <= $2 ORDER BY e.recorded_at DESC, e.position DESC LIMIT 1)
    UNION ALL
    SELECT 'h', NULL, NULL, NULL, position, recorded_at, NULL, NULL FROM ledger_head
"""


async def read_history(conn: Connection, streams: Sequence[str], known_at: dt.datetime) -> History:
    """Return the given streams as known at ``known_at``, with the log's position then.

    The export rules are few and the same for every query, so only the position of their
    latest event is read here; ``read_rules`` fetches them when that changes.
    """
    history = History(streams={stream: [] for stream in streams})
    for row in await conn.fetch(_HISTORY, list(streams), known_at):
        if row["part"] == "p":
            history.position = row["position"]
            continue
        if row["part"] == "r":
            history.rules_position = row["position"] or 0
            continue
        if row["part"] == "h":
            # Nothing recorded after the head's recorded_at exists yet, and nothing appended
            # later can be stamped at or before it (events/planning.py, ``after``): the answer
            # is what the ledger said at the earlier of the two instants, and stays so.
            history.known_at = min(known_at, row["recorded_at"]) if row["position"] else known_at
            continue
        item = HistoryRow(
            row["event_id"],
            row["type"],
            row["position"],
            row["recorded_at"],
            row["effective_date"],
            row["data"],
        )
        history.streams[row["stream"]].append(item)
    for rows in history.streams.values():
        rows.sort(key=lambda r: r.position)
    return history


async def read_rules(conn: Connection) -> list[HistoryRow]:
    """Return every event of the export-rule streams, in position order."""
    rows = await conn.fetch(
        """SELECT event_id, type, position, recorded_at, effective_date, data::text AS data
           FROM events WHERE stream LIKE 'export-rule:%' ORDER BY position"""
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


async def head_position(conn: Connection) -> int:
    """Return the head position of the log."""
    position: int = await conn.fetchval("SELECT position FROM ledger_head")
    return position
