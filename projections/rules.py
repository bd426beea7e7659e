"""Export rules in force on a date: the latest change effective by then, unless a rescission.

Each change of a rule (its action on a date) is one fact, however many reports it has: they are
merged first (projections/facts.py), and a rule in force carries the ``sources`` and
``disputes`` of its latest change (shapes in projections/provenance.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from msgspec import Struct

from events.vocabulary import ExportRule
from projections.facts import disputes_of, merged_facts, sources_of
from projections.provenance import Alternative, SourceRef
from projections.timeline import EffectiveFact, in_valid_time_order


class RuleState(Struct, frozen=True, kw_only=True):
    """A rule as its latest change effective by ``as_of`` left it."""

    rule_id: str
    issuing_jurisdiction: str
    title: str
    authority: str
    restricted_items: list[str]
    target_jurisdictions: list[str]
    target_entities: list[str]
    effective_date: dt.date
    action: str
    sources: list[SourceRef] = []
    disputes: dict[str, list[Alternative]] = {}


def rules_in_force(
    facts: Iterable[EffectiveFact],
    as_of: dt.date,
    target_jurisdiction: str | None = None,
) -> list[RuleState]:
    """Return the rules in force on ``as_of``, optionally only those targeting a jurisdiction."""
    latest: dict[str, RuleState] = {}
    effective = [f for f in facts if f.effective_date <= as_of and isinstance(f.data, ExportRule)]
    effective.sort(key=in_valid_time_order)
    for fact in merged_facts(effective):
        data = fact.data
        assert isinstance(data, ExportRule)
        latest[data.rule_id] = RuleState(
            rule_id=data.rule_id,
            issuing_jurisdiction=data.issuing_jurisdiction,
            title=data.title,
            authority=data.authority,
            restricted_items=list(data.restricted_items),
            target_jurisdictions=list(data.target_jurisdictions),
            target_entities=list(data.target_entities),
            effective_date=fact.effective_date,
            action=data.action,
            sources=sources_of(fact),
            disputes=disputes_of(fact),
        )
    return sorted(
        (
            rule
            for rule in latest.values()
            if rule.action != "rescinded"
            and (target_jurisdiction is None or target_jurisdiction in rule.target_jurisdictions)
        ),
        key=lambda r: r.rule_id,
    )
