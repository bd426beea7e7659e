"""A company's state on a date: one pure fold of its amended facts, no I/O.

The same function answers "now" and any past ``(as_of, known_at)``: the caller passes the facts
as known at ``known_at`` (projections/timeline.py) and the export rules in force on ``as_of``
(projections/rules.py); this module keeps the facts effective on or before ``as_of`` and folds
them in effective-date order (event-id order within a day, see ``in_valid_time_order``).

Each fact is folded once however many reports it has: the reports of one fact are merged first
(projections/facts.py), and every fact shown carries its ``sources`` and ``disputes`` (shapes in
projections/provenance.py): the company itself (from its registration), each round (and each
of its investors, its own ``sources``), valuation, approval and export restriction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from decimal import Context, Decimal, Inexact

from msgspec import Struct

from events.vocabulary import (
    CompanyRegistered,
    Money,
    RegulatoryApproval,
    RoundAnnounced,
    ValuationReported,
)
from projections.facts import disputes_of, merged_facts, named_by, sources_of
from projections.provenance import Alternative, SourceRef
from projections.rules import RuleState
from projections.timeline import EffectiveFact, in_valid_time_order


class DatedValuation(Struct, frozen=True, kw_only=True):
    """A valuation with the date it took effect and the event that reported it."""

    value: str
    currency: str
    effective_date: dt.date
    event_id: uuid.UUID
    basis: str | None = None
    sources: list[SourceRef] = []
    disputes: dict[str, list[Alternative]] = {}


class RoundInvestor(Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """An investor in a round, with the reports that named it."""

    investor_id: str
    name: str | None = None
    lead: bool = False
    sources: list[SourceRef] = []


class Round(Struct, frozen=True, kw_only=True, gc=False):
    """A funding round as the company's state shows it."""

    round_name: str
    amount: Money | None
    amount_usd: str | None
    investors: list[RoundInvestor]
    effective_date: dt.date
    event_id: uuid.UUID
    post_money_valuation: Money | None = None
    sources: list[SourceRef] = []
    disputes: dict[str, list[Alternative]] = {}


class Approval(Struct, frozen=True, kw_only=True, gc=False):
    """The current status of one approval (jurisdiction and scope)."""

    jurisdiction: str
    authority: str
    scope: str
    status: str
    product: str | None
    effective_date: dt.date
    event_id: uuid.UUID
    sources: list[SourceRef] = []
    disputes: dict[str, list[Alternative]] = {}


class Restriction(Struct, frozen=True, kw_only=True):
    """An export rule in force that restricts the company, and why."""

    rule_id: str
    title: str
    authority: str
    restricted_items: list[str]
    effective_date: dt.date
    reason: str
    sources: list[SourceRef] = []
    disputes: dict[str, list[Alternative]] = {}


class CompanyState(Struct, frozen=True, kw_only=True):
    """Everything known about a company on ``as_of`` as the ledger said at ``known_at``."""

    company_id: str
    name: str | None
    jurisdiction: str | None
    legal_name: str | None
    founded_on: dt.date | None
    valuation: DatedValuation | None
    rounds: list[Round]
    total_raised_usd: str
    investors: list[str]
    approvals: list[Approval]
    export_restrictions: list[Restriction]
    sources: list[SourceRef] = []  # the reports of the company's registration
    disputes: dict[str, list[Alternative]] = {}


def in_effect_order(facts: Iterable[EffectiveFact], as_of: dt.date) -> list[EffectiveFact]:
    """Keep the facts effective on or before ``as_of``, in valid-time order."""
    return sorted(
        (f for f in facts if f.effective_date <= as_of),
        key=in_valid_time_order,
    )


def valuations(facts: Iterable[EffectiveFact]) -> list[DatedValuation]:
    """Return every valuation reported, in effective-date order.

    A round's post-money valuation is a reported valuation too, dated with the round.
    """
    return valuations_in_order(sorted(facts, key=in_valid_time_order))


def valuations_in_order(ordered: Sequence[EffectiveFact]) -> list[DatedValuation]:
    """``valuations`` of facts already in valid-time order (``Timeline``)."""
    return [v for v in map(_dated_valuation, merged_facts(ordered)) if v is not None]


def _dated_valuation(fact: EffectiveFact) -> DatedValuation | None:
    """The valuation a fact reports, if any."""
    data = fact.data
    disputes = disputes_of(fact)
    if isinstance(data, ValuationReported):
        money, basis = data.valuation, data.basis
    elif isinstance(data, RoundAnnounced) and data.post_money_valuation is not None:
        money, basis = data.post_money_valuation, "post-money"
        disputed = disputes.get("post_money_valuation")
        disputes = {"valuation": disputed} if disputed else {}
    else:
        return None
    return DatedValuation(
        value=money.value,
        currency=money.currency,
        effective_date=fact.effective_date,
        event_id=fact.event_id,
        basis=basis,
        sources=sources_of(fact),
        disputes=disputes,
    )


def company_state(
    company_id: str,
    facts: Iterable[EffectiveFact],
    rules: Iterable[RuleState],
    as_of: dt.date,
) -> CompanyState | None:
    """Fold a company's facts into its state on ``as_of``; None if nothing is known by then."""
    return fold_company(company_id, in_effect_order(facts, as_of), rules)


def fold_company(
    company_id: str, ordered: Sequence[EffectiveFact], rules: Iterable[RuleState]
) -> CompanyState | None:
    """Fold the facts effective by a day, given in valid-time order, into the state then.

    ``company_state`` with the filtering and ordering already done (``Timeline.until``).
    """
    return fold_shown(company_id, [shown(fact) for fact in merged_facts(ordered)], rules)


# A merged fact with its place in valid-time order (an int that sorts as ``in_valid_time_order``
# does) and what an answer shows of it: its ``Round`` or ``Approval``, if either.
Shown = tuple[int, EffectiveFact, Round | Approval | None]


def shown(fact: EffectiveFact) -> Shown:
    """A merged fact with its place in valid time and its view (``Round``, ``Approval``, None).

    Neither depends on the day asked, so a fact's view is made once (projections/merged.py).
    """
    data = fact.data
    place = fact.effective_date.toordinal() << 128 | fact.event_id.int
    if isinstance(data, RoundAnnounced):
        return place, fact, _round(fact, data)
    if isinstance(data, RegulatoryApproval):
        return place, fact, _approval(fact)
    return place, fact, None


def fold_shown(
    company_id: str, facts: Sequence[Shown], rules: Iterable[RuleState]
) -> CompanyState | None:
    """Fold merged facts, in valid-time order and each with its view (``shown``), into a state."""
    if not facts:
        return None
    registered: EffectiveFact | None = None
    rounds: list[Round] = []
    approvals: dict[tuple[str, str], tuple[tuple[dt.date, uuid.UUID], Approval]] = {}
    for _, fact, view in facts:
        if view is None:
            if isinstance(fact.data, CompanyRegistered):
                registered = fact
        elif isinstance(view, Round):
            rounds.append(view)
        else:
            _keep_latest(approvals, fact, view)
    latest = None  # the last valuation in valid-time order
    for _, fact, _ in reversed(facts):
        latest = _dated_valuation(fact)
        if latest is not None:
            break
    company = registered.data if registered is not None else None
    assert company is None or isinstance(company, CompanyRegistered)
    jurisdiction = company.jurisdiction if company else None
    return CompanyState(
        company_id=company_id,
        name=company.name if company else None,
        jurisdiction=jurisdiction,
        legal_name=company.legal_name if company else None,
        founded_on=company.founded_on if company else None,
        valuation=latest,
        rounds=rounds,
        total_raised_usd=_total_usd(rounds),
        investors=sorted({i.investor_id for r in rounds for i in r.investors}),
        approvals=sorted((a for _, a in approvals.values()), key=_by_scope),
        export_restrictions=restrictions(company_id, jurisdiction, rules),
        sources=sources_of(registered) if registered is not None else [],
        disputes=disputes_of(registered) if registered is not None else {},
    )


def _keep_latest(
    approvals: dict[tuple[str, str], tuple[tuple[dt.date, uuid.UUID], Approval]],
    fact: EffectiveFact,
    approval: Approval,
) -> None:
    """Keep the approval reported latest in valid time for its jurisdiction and scope.

    A status reported again after a change (granted, revoked, granted again) is one fact under
    its key; it stands from its latest report, whatever date its reports agree on.
    """
    key = (approval.jurisdiction, approval.scope)
    when = fact.provenance.last_reported if fact.provenance else fact.effective_date
    held = approvals.get(key)
    if held is None or (when, fact.event_id) >= held[0]:
        approvals[key] = ((when, fact.event_id), approval)


def _by_scope(approval: Approval) -> tuple[str, str]:
    return approval.jurisdiction, approval.scope


def restrictions(
    company_id: str, jurisdiction: str | None, rules: Iterable[RuleState]
) -> list[Restriction]:
    """Return the rules in force that name the company or target its jurisdiction."""
    found = []
    for rule in rules:
        if company_id in rule.target_entities:
            reason = "entity"
        elif jurisdiction is not None and jurisdiction in rule.target_jurisdictions:
            reason = "jurisdiction"
        else:
            continue
        found.append(
            Restriction(
                rule_id=rule.rule_id,
                title=rule.title,
                authority=rule.authority,
                restricted_items=list(rule.restricted_items),
                effective_date=rule.effective_date,
                reason=reason,
                sources=rule.sources,
                disputes=rule.disputes,
            )
        )
    return sorted(found, key=lambda r: (r.effective_date, r.rule_id))


def _round(fact: EffectiveFact, data: RoundAnnounced) -> Round:
    sources = sources_of(fact)
    merged = fact.provenance is not None
    # Views are kept as long as their stream is held (projections/merged.py): a round reported
    # once shares one list of sources with its investors, as every one of them is the same.
    return Round(
        round_name=data.round_name,
        amount=data.amount,
        amount_usd=data.amount_usd,
        investors=[
            RoundInvestor(
                investor_id=i.investor_id,
                name=i.name,
                lead=i.lead,
                sources=named_by(fact, i.investor_id) if merged else sources,
            )
            for i in data.investors
        ],
        effective_date=fact.effective_date,
        event_id=fact.event_id,
        post_money_valuation=data.post_money_valuation,
        sources=sources,
        disputes=disputes_of(fact),
    )


def _approval(fact: EffectiveFact) -> Approval:
    data = fact.data
    assert isinstance(data, RegulatoryApproval)
    return Approval(
        jurisdiction=data.jurisdiction,
        authority=data.authority,
        scope=data.scope,
        status=data.status,
        product=data.product,
        effective_date=fact.effective_date,
        event_id=fact.event_id,
        sources=sources_of(fact),
        disputes=disputes_of(fact),
    )


def _total_usd(rounds: Iterable[Round]) -> str:
    """Sum the reported USD figures: no exchange rate is ever made up.

    A round in USD counts its own amount; any other round counts its reported ``amount_usd``,
    also one whose amount in its own currency is not known (a report that gives only a dollar
    figure); a round with neither counts nothing. Decimal addition is exact, so the sum is
    exactly the sum of the reported strings.
    """
    total = Decimal(0)
    add = _EXACT.add
    for r in rounds:
        if r.amount is not None and r.amount.currency == "USD":
            total = add(total, Decimal(r.amount.value))
        elif r.amount_usd is not None:
            total = add(total, Decimal(r.amount_usd))
    return format(total, "f")


# Enough digits for any sum of the decimals the vocabulary admits, and an error rather than a
# rounding if that were ever wrong: the sum is never rounded.
_EXACT = Context(prec=200, traps=[Inexact])


def investor_holding(state: CompanyState, investor_id: str) -> tuple[list[str], list[SourceRef]]:
    """The rounds of a company naming an investor, and the reports that named it, oldest first."""
    rounds: list[str] = []
    naming: dict[object, SourceRef] = {}
    for round_ in state.rounds:
        for investor in round_.investors:
            if investor.investor_id == investor_id:
                rounds.append(round_.round_name)
                naming.update((s.event_id, s) for s in investor.sources)
    return rounds, sorted(naming.values(), key=_published)


def _published(source: SourceRef) -> tuple[dt.datetime, str]:
    return source.published_at or _OLDEST, str(source.event_id)


_OLDEST = dt.datetime.min.replace(tzinfo=dt.UTC)
