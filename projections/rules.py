"""Export rules in force on a date: the latest change effective by then, unless a rescission."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from msgspec import Struct

from events.vocabulary import ExportRule
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


def rules_in_force(
    facts: Iterable[EffectiveFact],
    as_of: dt.date,
    target_jurisdiction: str | None = None,
) -> list[RuleState]:
    """Return the rules in force on ``as_of``, optionally only those targeting a jurisdiction."""
    latest: dict[str, RuleState] = {}
    for fact in sorted(facts, key=in_valid_time_order):
        data = fact.data
        if not isinstance(data, ExportRule) or fact.effective_date > as_of:
            continue
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
