"""Answers with their proof: the events they fold, proven in the latest signed checkpoint.

A verified answer speaks for the log as of its checkpoint (``position`` is the checkpoint's
tree size), so that every event it was folded from is provable; it is folded from those events
by service/verified.py, the same functions the client checks it with.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import msgspec

from events import log, tree
from events.leaves import ShownEvent
from events.log import Connection
from events.records import RecordedEvent
from events.streams import RULE_STREAMS_LIKE, company_stream
from events.tree import SignedCheckpoint
from events.tree_memory import TreeMemory
from projections import lookups
from service import verified
from service.schemas import (
    Proof,
    ProvenCompany,
    ProvenExportRules,
    ProvenPortfolio,
    ProvenValuations,
)

# What a verified answer is folded from, in one statement: the events of its streams (whole,
# however long) and, if asked ($3), the export rules' up to the checkpoint ($2), in position
# order; and on every row (one with no event when there is none) the instant the checkpoint's
# last event was recorded (the database's time for an empty log) and the database's date in
# UTC, the clock that stamps recorded_at. The streams' events past the checkpoint are left out
# by the caller: a bound on their position would lead the generic plan to AND in a scan of
# every position up to it.
_FOLDED = f"""
    SELECT m.last_at, m.today, e.* FROM (
        SELECT coalesce((SELECT recorded_at FROM events WHERE position = $2),
                        statement_timestamp()) AS last_at,
               (statement_timestamp() AT TIME ZONE 'UTC')::date AS today
    ) m LEFT JOIN (
        SELECT {log.EVENT_COLUMNS} FROM events WHERE stream = ANY($1::text[])
        UNION ALL
        SELECT {log.EVENT_COLUMNS} FROM events
        WHERE $3 AND stream LIKE '{RULE_STREAMS_LIKE}' AND position <= $2
    ) e ON true
    ORDER BY e.position"""


@dataclass(frozen=True)
class _Folded:
    """The events an answer is folded from, with their proof, and when it is known at."""

    proof: Proof
    known_at: dt.datetime
    today: dt.date


def _shown(event: RecordedEvent) -> ShownEvent:
    fields = msgspec.structs.asdict(event)
    fields["metadata"] = event.metadata or msgspec.Raw(b"null")
    return ShownEvent(**fields)


async def _prove(
    conn: Connection,
    signed: SignedCheckpoint,
    memory: TreeMemory | None,
    streams: list[str],
    rules: bool,
    known_at: dt.datetime | None,
) -> _Folded:
    """Read the events and the moment in one statement, then their nodes in one more.

    As known at the checkpoint's last event when ``known_at`` is not given, or earlier when it
    is: the same clock as the plain answers (the database's), never this process's.
    """
    size = signed.tree_size
    rows = await conn.fetch(_FOLDED, streams, size, rules)
    folded = [row for row in rows if row["position"] is not None and row["position"] <= size]
    events = [log.to_recorded(row) for row in folded]
    proofs = await tree.inclusions(conn, [e.position - 1 for e in events], size, memory)
    proof = Proof(
        checkpoint=signed.note,
        events=[_shown(e) for e in events],
        inclusion=[
            verified.inclusion_proof(e.position - 1, size, leaf, hashes)
            for e, (leaf, hashes) in zip(events, proofs, strict=True)
        ],
    )
    last = rows[0]["last_at"]
    return _Folded(proof, last if known_at is None else min(known_at, last), rows[0]["today"])


async def company(
    conn: Connection,
    signed: SignedCheckpoint,
    memory: TreeMemory | None,
    company_id: str,
    as_of: dt.date | None,
    known_at: dt.datetime | None,
) -> ProvenCompany | None:
    """A company's state with its proof (None: unknown)."""
    folded = await _prove(conn, signed, memory, [company_stream(company_id)], True, known_at)
    size = signed.tree_size
    answer = verified.company_answer(
        folded.proof.events, company_id, as_of or folded.today, folded.known_at, size
    )
    return ProvenCompany(**msgspec.structs.asdict(answer), proof=folded.proof) if answer else None


async def valuations(
    conn: Connection,
    signed: SignedCheckpoint,
    memory: TreeMemory | None,
    company_id: str,
    as_of: dt.date | None,
    known_at: dt.datetime | None,
) -> ProvenValuations | None:
    """A company's valuations with their proof (None: unknown)."""
    folded = await _prove(conn, signed, memory, [company_stream(company_id)], False, known_at)
    size = signed.tree_size
    answer = verified.valuations_answer(
        folded.proof.events, company_id, as_of, folded.known_at, size
    )
    return (
        ProvenValuations(**msgspec.structs.asdict(answer), proof=folded.proof) if answer else None
    )


async def portfolio(
    conn: Connection,
    signed: SignedCheckpoint,
    memory: TreeMemory | None,
    investor_id: str,
    as_of: dt.date | None,
    known_at: dt.datetime | None,
) -> ProvenPortfolio | None:
    """An investor's holdings with their proof (None: no round names the investor)."""
    links = await lookups.investor_company_ids(conn, investor_id)
    streams = [company_stream(company_id) for company_id, _ in links]
    folded = await _prove(conn, signed, memory, streams, False, known_at)
    size = signed.tree_size
    day = as_of or folded.today
    answer = verified.portfolio_answer(folded.proof.events, investor_id, day, folded.known_at, size)
    return ProvenPortfolio(**msgspec.structs.asdict(answer), proof=folded.proof) if answer else None


async def export_rules(
    conn: Connection,
    signed: SignedCheckpoint,
    memory: TreeMemory | None,
    as_of: dt.date | None,
    known_at: dt.datetime | None,
    target: str | None,
) -> ProvenExportRules:
    """The export rules in force with their proof."""
    folded = await _prove(conn, signed, memory, [], True, known_at)
    size = signed.tree_size
    answer = verified.rules_answer(
        folded.proof.events, as_of or folded.today, folded.known_at, target, size
    )
    return ProvenExportRules(**msgspec.structs.asdict(answer), proof=folded.proof)
