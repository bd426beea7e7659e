"""Stored events as the folds need them: the export rules, read whole, and the head."""

from __future__ import annotations

import datetime as dt
import uuid

from msgspec import Struct

from events.store import Connection

RULE_STREAMS = "export-rule:%"


class HistoryRow(Struct, frozen=True, gc=False):
    """One stored event as the folds need it: ids, times, the payload text and its source."""

    event_id: uuid.UUID
    type: str
    position: int
    recorded_at: dt.datetime
    effective_date: dt.date
    data: str
    source_name: str = ""
    source_url: str | None = None
    published_at: dt.datetime | None = None
    fact: str = ""  # the fact key stored with the event; empty: derived when folded


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
