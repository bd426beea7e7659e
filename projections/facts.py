"""Reports into facts: the reports of one fact merged into one, their sources and disputes kept.

The reports of a fact (same type, same stream, same fact key: events/facts.py) are merged after
their corrections and retractions are applied (projections/timeline.py), and only among those
effective by the day asked about. A report ranked ``deprecated`` never counts; a fact whose
every report is deprecated is not in the answer.

- List fields merge their members: a round's ``investors`` (by ``investor_id``; each remembers
  the reports that named it, its ``name`` is that of the best report giving one, and it is a
  lead if any report says so), a rule's ``restricted_items``, ``target_jurisdictions`` and
  ``target_entities``. Members come in the best report's order, then the next report's new
  ones, and so on.
- Every other field, and the effective date, takes the value chosen by this rule, in order: a
  value given by a report ranked ``preferred``; the value given by the most distinct sources
  (by ``source.name``); the value of the most recently published report (by
  ``source.published_at``, a report without one counting as the oldest); the value of the
  greatest ``event_id``. A report that omits a field (or gives null) has no opinion on it.
  Values are compared as what they mean: money and decimals by amount (``"342000000"`` and
  ``"342000000.0"`` agree), round names as fact keys compare them.

"Best report" means, here and for the merged fact's ``event_id``: preferred first, then the
most recently published, then the greatest ``event_id``. The merged fact's ``event_id`` is the
best report that supports every chosen value (the best counted report if none does). Nothing
depends on the order in which reports were appended.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from events.facts import round_name_key
from events.vocabulary import ExportRule, InvestorRef, Money
from projections.payloads import unchecked
from projections.provenance import Alternative, Disputes, Provenance, SourceRef
from projections.timeline import EffectiveFact, in_valid_time_order

PREFERRED = "preferred"
DEPRECATED = "deprecated"
MEMBER_FIELDS = frozenset({"restricted_items", "target_jurisdictions", "target_entities"})
_OLDEST = dt.datetime.min.replace(tzinfo=dt.UTC)
_NO_SOURCE = ""


def merged_facts(ordered: Sequence[EffectiveFact]) -> Sequence[EffectiveFact]:
    """Merge the reports of each fact reported more than once; keep valid-time order.

    ``ordered`` is in valid-time order (``in_valid_time_order``); so is the result. Without a
    shared report (the common case) it is ``ordered`` itself.
    """
    for fact in ordered:
        if fact.shared:
            break
    else:
        return ordered
    groups: dict[tuple[str, str, str], list[EffectiveFact]] = {}
    merged = []
    for fact in ordered:
        if fact.shared:
            groups.setdefault(fact_group(fact), []).append(fact)
        else:
            merged.append(fact)
    for reports in groups.values():
        one = merge(reports)
        if one is not None:
            merged.append(one)
    merged.sort(key=in_valid_time_order)
    return merged


def fact_group(fact: EffectiveFact) -> tuple[str, str, str]:
    """Which fact a report is about, among all streams: its type, its stream's id, its key."""
    data = fact.data
    scope: str = data.rule_id if isinstance(data, ExportRule) else data.company_id  # type: ignore[attr-defined]
    return fact.type, scope, fact.fact


def merge(reports: Sequence[EffectiveFact]) -> EffectiveFact | None:
    """Merge the reports of one fact into one fact (None if every report is deprecated)."""
    counted = sorted((r for r in reports if r.rank != DEPRECATED), key=_standing, reverse=True)
    if not counted:
        return None
    first = counted[0]
    fields: dict[str, Any] = {}
    disputes: Disputes = {}
    dissenters: set[uuid.UUID] = set()
    named_by: dict[str, list[SourceRef]] = {}
    sources = _sources(counted)
    for name in first.data.__struct_fields__:
        if name == "investors":
            fields[name] = _investors(counted, named_by, sources)
        elif name in MEMBER_FIELDS:
            fields[name] = _members(counted, name)
        else:
            fields[name] = _choose(name, counted, _field(name), disputes, dissenters)
    effective_date = _choose("effective_date", counted, _date, disputes, dissenters)
    supporting = [r for r in counted if r.event_id not in dissenters]
    best = supporting[0] if supporting else first
    provenance = Provenance(
        sources=sources,
        disputes=disputes,
        named_by=named_by,
        last_reported=max(r.effective_date for r in counted),
    )
    return EffectiveFact(
        best.event_id,
        first.type,
        best.position,
        effective_date,
        unchecked(first.type)(**fields),
        tuple(c for r in counted for c in r.corrected_by),
        first.fact,
        best.source,
        best.rank,
        True,
        provenance,
    )


def sources_of(fact: EffectiveFact) -> list[SourceRef]:
    """Return the reports behind a fact (merged or reported once)."""
    if fact.provenance is not None:
        return fact.provenance.sources
    return [fact.source] if fact.source is not None else []


def disputes_of(fact: EffectiveFact) -> Disputes:
    """Return the values disputed by a fact's reports, per field (never to be changed)."""
    return fact.provenance.disputes if fact.provenance is not None else _NO_DISPUTES


_NO_DISPUTES: Disputes = {}  # one for every fact reported once: answers are never changed


def named_by(fact: EffectiveFact, member: str) -> list[SourceRef]:
    """Return the reports that named a member of a fact's list (a round's investor)."""
    if fact.provenance is not None:
        return fact.provenance.named_by.get(member, [])
    return [fact.source] if fact.source is not None else []


def _standing(report: EffectiveFact) -> tuple[bool, dt.datetime, uuid.UUID]:
    """How a report ranks among its fact's: preferred, then published latest, then event id."""
    source = report.source
    published = source.published_at if source is not None else None
    return report.rank == PREFERRED, published or _OLDEST, report.event_id


def _name(report: EffectiveFact) -> str:
    return report.source.name if report.source is not None else _NO_SOURCE


def _field(name: str) -> Callable[[EffectiveFact], Any]:
    def value(report: EffectiveFact) -> Any:
        return getattr(report.data, name)

    return value


def _date(report: EffectiveFact) -> dt.date:
    return report.effective_date


def _choose(
    name: str,
    counted: list[EffectiveFact],
    value_of: Callable[[EffectiveFact], Any],
    disputes: Disputes,
    dissenters: set[uuid.UUID],
) -> Any:
    """Choose a field's value by the rule; record the others in ``disputes``.

    ``counted`` is best report first, so the first report of each value is its best, and its
    spelling is the one shown.
    """
    values = [value_of(report) for report in counted]
    given = [value for value in values if value is not None]  # None: no opinion
    if not given:
        return None
    first = given[0]
    if all(value == first for value in given):
        return first  # the commonest case, every report agreeing in the same spelling
    groups: dict[Any, list[EffectiveFact]] = {}
    shown: dict[Any, Any] = {}
    for report, value in zip(counted, values, strict=True):
        if value is None:
            continue
        same = _comparable(name, value)
        if same not in groups:
            groups[same] = []
            shown[same] = value
        groups[same].append(report)
    ranked = sorted(groups, key=lambda same: _score(groups[same]), reverse=True)
    if len(ranked) > 1:
        disputes[name] = [
            Alternative(value=shown[same], sources=_sources(groups[same])) for same in ranked[1:]
        ]
        dissenters.update(r.event_id for same in ranked[1:] for r in groups[same])
    return shown[ranked[0]]


def _score(group: list[EffectiveFact]) -> tuple[bool, int, dt.datetime, uuid.UUID]:
    """A value's standing: given by a preferred report, by how many sources, how recently."""
    preferred, published, event_id = _standing(group[0])
    return preferred, len({_name(r) for r in group}), published, event_id


def _comparable(name: str, value: Any) -> Any:
    """What a value means, for deciding whether two reports agree on it."""
    if isinstance(value, Money):
        return Decimal(value.value), value.currency
    if name == "amount_usd":
        return Decimal(value)
    if name == "round_name":
        return round_name_key(value)
    return value


def _members(counted: list[EffectiveFact], name: str) -> list[Any]:
    seen: dict[Any, None] = {}
    for report in counted:
        for member in getattr(report.data, name):
            seen.setdefault(member, None)
    return list(seen)


def _investors(
    counted: list[EffectiveFact], named_by: dict[str, list[SourceRef]], sources: list[SourceRef]
) -> list[InvestorRef]:
    """Merge the investors; ``sources`` (the fact's) is shared by those every report named."""
    names: dict[str, str | None] = {}
    leads: dict[str, bool] = {}
    reports: dict[str, list[EffectiveFact]] = {}
    for report in counted:
        for investor in report.data.investors:  # type: ignore[attr-defined]
            key = investor.investor_id
            names[key] = names.get(key) or investor.name
            leads[key] = leads.get(key, False) or investor.lead
            reports.setdefault(key, []).append(report)
    for key, naming in reports.items():
        named_by[key] = sources if len(naming) == len(counted) else _sources(naming)
    return [InvestorRef(investor_id=key, name=names[key], lead=leads[key]) for key in names]


def _sources(reports: list[EffectiveFact]) -> list[SourceRef]:
    found = [r.source for r in reports if r.source is not None]
    found.sort(key=_published_then_id)
    return found


def _published_then_id(source: SourceRef) -> tuple[dt.datetime, uuid.UUID]:
    return source.published_at or _OLDEST, source.event_id
