"""Verified answers: fold the proven events into an answer, and check one received.

The service and the client use the same functions: the service answers ``proof=true`` with
what they fold from the events it proves, and the client folds those events again (with the
ledger's pure folds, projections/) and refuses an answer that differs, or whose events are not
in the signed tree.

What a check proves: every event shown is in the log the key signed, at its position, byte for
byte, and the answer is what those events fold to. What it cannot prove: that no event is
missing from the answer's streams beyond their last proven version, or (for a portfolio) that
no company is missing from the list the service looked up.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterable, Sequence

import msgspec

from events.leaves import ShownEvent, recorded_leaf
from events.merkle import ProofError, verify_inclusion
from events.notes import Checkpoint, NoteError, Verifier, signed_checkpoint
from events.streams import EXPORT_RULES, category, company_stream, stream_id
from projections.company import fold_company, investor_holding, valuations_in_order
from projections.rules import rules_in_force
from projections.timeline import LoggedEvent, decode_payload, effective_facts, timeline
from service.schemas import (
    Company,
    ExportRules,
    Holding,
    InclusionProof,
    Portfolio,
    Proof,
    ProvenCompany,
    ProvenExportRules,
    ProvenPortfolio,
    ProvenValuations,
    Valuations,
)


class VerificationError(Exception):
    """A verified answer that does not check out: signature, proofs or the answer itself."""


class _Source(msgspec.Struct, frozen=True):
    name: str = ""
    url: str | None = None
    published_at: dt.datetime | None = None


_source = msgspec.json.Decoder(_Source | None)


def logged(events: Iterable[ShownEvent]) -> list[LoggedEvent]:
    """Decode shown events for the folds; fact keys are derived, as they are not signed."""
    found = []
    for e in events:
        source = _source.decode(bytes(e.source)) or _Source()
        found.append(
            LoggedEvent(
                e.event_id,
                e.type,
                e.position,
                dt.datetime.fromisoformat(e.recorded_at),
                e.effective_date,
                decode_payload(e.type, bytes(e.data)),
                source.name,
                source.url,
                source.published_at,
            )
        )
    return found


def _of(events: Sequence[ShownEvent], stream: str) -> list[ShownEvent]:
    return [e for e in events if e.stream == stream]


def _rules(events: Sequence[ShownEvent]) -> list[ShownEvent]:
    return [e for e in events if category(e.stream) == EXPORT_RULES]


def company_answer(
    events: Sequence[ShownEvent],
    company_id: str,
    as_of: dt.date,
    known_at: dt.datetime,
    position: int,
) -> Company | None:
    """Fold a company's state from its stream's events and the rules' (None: unknown then)."""
    facts = timeline(effective_facts(logged(_of(events, company_stream(company_id))), known_at))
    ordered = facts.until(as_of)
    rule_facts = timeline(effective_facts(logged(_rules(events)), known_at)).until(as_of)
    rules = rules_in_force(rule_facts, as_of)
    state = fold_company(company_id, ordered, rules) if ordered else None
    if state is None:
        return None
    return Company(
        **msgspec.structs.asdict(state),
        as_of=as_of,
        known_at=_instant(known_at),
        position=position,
    )


def valuations_answer(
    events: Sequence[ShownEvent],
    company_id: str,
    as_of: dt.date | None,
    known_at: dt.datetime,
    position: int,
) -> Valuations | None:
    """Fold a company's valuations (None: company unknown then)."""
    facts = timeline(effective_facts(logged(_of(events, company_stream(company_id))), known_at))
    if not facts.facts:
        return None
    return Valuations(
        company_id=company_id,
        valuations=valuations_in_order(facts.facts if as_of is None else facts.until(as_of)),
        as_of=as_of,
        known_at=_instant(known_at),
        position=position,
    )


def portfolio_answer(
    events: Sequence[ShownEvent],
    investor_id: str,
    as_of: dt.date,
    known_at: dt.datetime,
    position: int,
) -> Portfolio | None:
    """Fold the holdings of an investor from the company streams given."""
    holdings = []
    for stream in sorted({e.stream for e in events if category(e.stream) != EXPORT_RULES}):
        facts = timeline(effective_facts(logged(_of(events, stream)), known_at)).until(as_of)
        state = fold_company(stream_id(stream), facts, [])
        if state is None:
            continue
        rounds, naming = investor_holding(state, investor_id)
        if rounds:
            holdings.append(Holding(state.company_id, rounds, naming))
    if not holdings:
        return None
    return Portfolio(
        investor_id=investor_id,
        companies=holdings,
        as_of=as_of,
        known_at=_instant(known_at),
        position=position,
    )


def rules_answer(
    events: Sequence[ShownEvent],
    as_of: dt.date,
    known_at: dt.datetime,
    target: str | None,
    position: int,
) -> ExportRules:
    """Fold the export rules in force."""
    facts = timeline(effective_facts(logged(_rules(events)), known_at)).facts
    rules = rules_in_force(facts, as_of, target)
    return ExportRules(rules=rules, as_of=as_of, known_at=_instant(known_at), position=position)


def _instant(value: dt.datetime) -> str:
    from events.chain import format_instant

    return format_instant(value)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def inclusion_proof(index: int, size: int, leaf: bytes, hashes: list[bytes]) -> InclusionProof:
    """Encode an inclusion proof as the service answers it."""
    return InclusionProof(
        leaf_index=index, tree_size=size, leaf_hash=_b64(leaf), hashes=[_b64(h) for h in hashes]
    )


def check_proof(proof: Proof, verifier: Verifier, position: int) -> Checkpoint:
    """Check the signature, each event's inclusion and each stream's continuity."""
    try:
        checkpoint = signed_checkpoint(proof.checkpoint, verifier)
    except NoteError as exc:
        raise VerificationError(f"the checkpoint does not verify: {exc}") from None
    if position != checkpoint.size:
        raise VerificationError(f"the answer is at {position}, its checkpoint at {checkpoint.size}")
    if len(proof.events) != len(proof.inclusion):
        raise VerificationError("the answer proves a different number of events than it shows")
    versions: dict[str, int] = {}
    for event, inclusion in zip(proof.events, proof.inclusion, strict=True):
        leaf = recorded_leaf(event)
        try:
            if inclusion.leaf_index != event.position - 1 or _b64(leaf) != inclusion.leaf_hash:
                raise ProofError("the proof is of another leaf")
            hashes = [base64.b64decode(h) for h in inclusion.hashes]
            verify_inclusion(inclusion.leaf_index, checkpoint.size, leaf, hashes, checkpoint.root)
        except (ProofError, ValueError) as exc:
            raise VerificationError(f"event {event.event_id} is not proven: {exc}") from None
        if event.stream_version != versions.get(event.stream, 0) + 1:
            raise VerificationError(f"the events of {event.stream} are not all shown, in order")
        versions[event.stream] = event.stream_version
    return checkpoint


def same(received: msgspec.Struct, expected: msgspec.Struct | None, what: str) -> None:
    """Refuse an answer that is not what the proven events fold to."""
    fields = {k: v for k, v in msgspec.structs.asdict(received).items() if k != "proof"}
    mine = msgspec.json.encode(msgspec.structs.asdict(expected)) if expected else b"null"
    if msgspec.json.encode(fields) != mine:
        raise VerificationError(f"the {what} is not what its proven events fold to")


def _known(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def check_company(answer: ProvenCompany, verifier: Verifier, company_id: str) -> None:
    """Raise VerificationError unless the answer is the fold of its proven events."""
    size = check_proof(answer.proof, verifier, answer.position).size
    at = _known(answer.known_at)
    same(answer, company_answer(answer.proof.events, company_id, answer.as_of, at, size), "company")


def check_valuations(answer: ProvenValuations, verifier: Verifier, company_id: str) -> None:
    """Raise VerificationError unless the valuations are the fold of their proven events."""
    size = check_proof(answer.proof, verifier, answer.position).size
    at = _known(answer.known_at)
    expected = valuations_answer(answer.proof.events, company_id, answer.as_of, at, size)
    same(answer, expected, "valuations")


def check_portfolio(answer: ProvenPortfolio, verifier: Verifier, investor_id: str) -> None:
    """Raise VerificationError unless the holdings are the fold of their proven events."""
    size = check_proof(answer.proof, verifier, answer.position).size
    at = _known(answer.known_at)
    expected = portfolio_answer(answer.proof.events, investor_id, answer.as_of, at, size)
    same(answer, expected, "portfolio")


def check_rules(answer: ProvenExportRules, verifier: Verifier, target: str | None) -> None:
    """Raise VerificationError unless the rules are the fold of their proven events."""
    size = check_proof(answer.proof, verifier, answer.position).size
    at = _known(answer.known_at)
    same(answer, rules_answer(answer.proof.events, answer.as_of, at, target, size), "export rules")
