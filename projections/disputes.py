"""A company's disputed facts: for each field its reports disagree on, both sides with sources.

Pure: it reads the merged facts (projections/facts.py) of a company effective by a day, every
one of them (a superseded valuation or approval too: the question is where the sources disagree,
not what the state is), and the export rules in force that restrict the company.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from msgspec import Struct

from events.vocabulary import (
    CompanyRegistered,
    RegulatoryApproval,
    RoundAnnounced,
    ValuationReported,
)
from projections.facts import disputes_of, merged_facts, sources_of
from projections.provenance import Alternative, Disputes, SourceRef
from projections.rules import RuleState
from projections.timeline import EffectiveFact


class FieldDispute(Struct, frozen=True, kw_only=True):
    """One disputed field: the value the answer shows with its sources, and the others."""

    field: str
    value: Any
    sources: list[SourceRef]
    alternatives: list[Alternative]


class DisputedFact(Struct, frozen=True, kw_only=True):
    """A fact whose reports disagree: what it is, and each field in dispute."""

    kind: str  # "company", "round", "valuation", "approval" or "export_rule"
    label: str  # which one: the round's name, the valuation's date, the rule's id, ...
    event_id: uuid.UUID | None  # the report shown (a rule in force is shown by its rule_id)
    effective_date: dt.date
    fields: list[FieldDispute]


_KINDS: tuple[tuple[type, str], ...] = (
    (CompanyRegistered, "company"),
    (RoundAnnounced, "round"),
    (ValuationReported, "valuation"),
    (RegulatoryApproval, "approval"),
)


def disputed_facts(ordered: Sequence[EffectiveFact], rules: Iterable[RuleState]) -> list[DisputedFact]:
    """Return the disputed facts among a company's (in valid-time order) and its rules'."""
    found = []
    for fact in merged_facts(ordered):
        disputes = disputes_of(fact)
        if disputes:
            kind = next(name for cls, name in _KINDS if isinstance(fact.data, cls))
            found.append(
                DisputedFact(
                    kind=kind,
                    label=_label(fact),
                    event_id=fact.event_id,
                    effective_date=fact.effective_date,
                    fields=_fields(fact, disputes, sources_of(fact)),
                )
            )
    for rule in rules:
        if rule.disputes:
            found.append(
                DisputedFact(
                    kind="export_rule",
                    label=rule.rule_id,
                    event_id=None,
                    effective_date=rule.effective_date,
                    fields=_fields(rule, rule.disputes, rule.sources),
                )
            )
    return found


def _label(fact: EffectiveFact) -> str:
    data: Any = fact.data
    if isinstance(data, RoundAnnounced):
        return data.round_name
    if isinstance(data, RegulatoryApproval):
        return " ".join(p for p in (data.jurisdiction, data.scope, data.product, data.status) if p)
    if isinstance(data, CompanyRegistered):
        return data.name
    return fact.effective_date.isoformat()


def _fields(holder: Any, disputes: Disputes, sources: list[SourceRef]) -> list[FieldDispute]:
    """Each disputed field of a fact (or a rule), with the value shown and its sources."""
    fields = []
    for name, alternatives in sorted(disputes.items()):
        dissent = {s.event_id for a in alternatives for s in a.sources}
        fields.append(
            FieldDispute(
                field=name,
                value=msgspec.to_builtins(_value(holder, name)),
                sources=[s for s in sources if s.event_id not in dissent],
                alternatives=alternatives,
            )
        )
    return fields


def _value(holder: Any, name: str) -> Any:
    if name == "effective_date":
        return holder.effective_date
    data = holder.data if isinstance(holder, EffectiveFact) else holder
    return getattr(data, name, None)
