"""Answers with their proof: the events they fold, proven in the latest signed checkpoint.

A verified answer speaks for the log as of its checkpoint (``position`` is the checkpoint's
tree size), so that every event it was folded from is provable; it is folded from those events
by service/verified.py, the same functions the client checks it with.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from events import log, tree
from events.leaves import ShownEvent
from events.log import Connection
from events.records import RecordedEvent
from events.streams import company_stream
from events.tree import SignedCheckpoint
from projections import lookups
from service import verified
from service.schemas import (
    Proof,
    ProvenCompany,
    ProvenExportRules,
    ProvenPortfolio,
    ProvenValuations,
)

MAX_STREAM_EVENTS = 1_000_000


def _shown(event: RecordedEvent) -> ShownEvent:
    fields = msgspec.structs.asdict(event)
    fields["metadata"] = event.metadata or msgspec.Raw(b"null")
    return ShownEvent(**fields)


async def _prove(
    conn: Connection, signed: SignedCheckpoint, streams: list[str], rules: bool
) -> Proof:
    size = signed.tree_size
    events: list[RecordedEvent] = []
    for stream in streams:
        found = await log.read_stream(conn, stream, 0, MAX_STREAM_EVENTS)
        events += [e for e in found if e.position <= size]
    if rules:
        events += await log.read_rule_events(conn, size)
    events.sort(key=lambda e: e.position)
    proofs = await tree.inclusions(conn, [e.position - 1 for e in events], size)
    return Proof(
        checkpoint=signed.note,
        events=[_shown(e) for e in events],
        inclusion=[
            verified.inclusion_proof(e.position - 1, size, leaf, hashes)
            for e, (leaf, hashes) in zip(events, proofs, strict=True)
        ],
    )


async def _moment(
    conn: Connection, signed: SignedCheckpoint, known_at: dt.datetime | None
) -> tuple[dt.datetime, dt.date]:
    """The instant an answer is known at, and the database's today.

    As known at the checkpoint's last event when not asked, or earlier when asked: the same
    clock as the plain answers (the database's), never this process's.
    """
    last, today = await log.moment_at(conn, signed.tree_size)
    return (last if known_at is None else min(known_at, last)), today


async def company(
    conn: Connection,
    signed: SignedCheckpoint,
    company_id: str,
    as_of: dt.date | None,
    known_at: dt.datetime | None,
) -> ProvenCompany | None:
    """A company's state with its proof (None: unknown)."""
    known, today = await _moment(conn, signed, known_at)
    proof = await _prove(conn, signed, [company_stream(company_id)], rules=True)
    size = signed.tree_size
    answer = verified.company_answer(proof.events, company_id, as_of or today, known, size)
    return ProvenCompany(**msgspec.structs.asdict(answer), proof=proof) if answer else None


async def valuations(
    conn: Connection,
    signed: SignedCheckpoint,
    company_id: str,
    as_of: dt.date | None,
    known_at: dt.datetime | None,
) -> ProvenValuations | None:
    """A company's valuations with their proof (None: unknown)."""
    known, _ = await _moment(conn, signed, known_at)
    proof = await _prove(conn, signed, [company_stream(company_id)], rules=False)
    answer = verified.valuations_answer(proof.events, company_id, as_of, known, signed.tree_size)
    return ProvenValuations(**msgspec.structs.asdict(answer), proof=proof) if answer else None


async def portfolio(
    conn: Connection,
    signed: SignedCheckpoint,
    investor_id: str,
    as_of: dt.date | None,
    known_at: dt.datetime | None,
) -> ProvenPortfolio | None:
    """An investor's holdings with their proof (None: no round names the investor)."""
    known, today = await _moment(conn, signed, known_at)
    links = await lookups.investor_company_ids(conn, investor_id)
    streams = [company_stream(company_id) for company_id, _ in links]
    proof = await _prove(conn, signed, streams, rules=False)
    size = signed.tree_size
    answer = verified.portfolio_answer(proof.events, investor_id, as_of or today, known, size)
    return ProvenPortfolio(**msgspec.structs.asdict(answer), proof=proof) if answer else None


async def export_rules(
    conn: Connection,
    signed: SignedCheckpoint,
    as_of: dt.date | None,
    known_at: dt.datetime | None,
    target: str | None,
) -> ProvenExportRules:
    """The export rules in force with their proof."""
    known, today = await _moment(conn, signed, known_at)
    proof = await _prove(conn, signed, [], rules=True)
    answer = verified.rules_answer(proof.events, as_of or today, known, target, signed.tree_size)
    return ProvenExportRules(**msgspec.structs.asdict(answer), proof=proof)
