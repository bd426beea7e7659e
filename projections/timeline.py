"""What the ledger said at an instant: facts with their corrections and retractions applied.

The rules, in the order events were recorded (position order), ignoring every event recorded
after ``known_at``:

- a fact enters with its payload and effective date;
- a correction replaces the payload of the fact it amends (directly, or through the correction
  it targets) and, when it gives one, its effective date; the latest correction wins;
- a retraction of a fact removes the fact, whatever corrections it had;
- a retraction of a correction withdraws that correction only: the fact reads as if the
  correction had never been recorded (the corrections before and after it still apply);
- a rank (``report_ranked``) of a report, or of a correction (which ranks the report it amends),
  replaces the report's earlier rank; a retraction of a rank withdraws it. Ranks are judgements
  about reports, not facts of the world, so their own effective date is not used.

Each fact is one source's report; it keeps its fact key (the stored one, or derived from the
original report by ``events.facts.fact_key``), its source and its standing rank. A report whose
fact has other reports known, or whose rank is not ``normal``, is marked ``shared``: only those
are merged (projections/facts.py), so a fact reported once costs nothing more than before.
"""

from __future__ import annotations

import bisect
import datetime as dt
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from events.facts import fact_key
from events.records import HistoryRow
from events.streams import EVENT_CORRECTED, EVENT_RETRACTED, EXPORT_RULE, REPORT_RANKED
from events.vocabulary import EventCorrected, EventRetracted, Fact
from projections.payloads import decode_payload as decode_payload
from projections.provenance import Provenance, SourceRef

NORMAL = "normal"


class LoggedEvent(msgspec.Struct, frozen=True, gc=False):
    """An event as the folds need it: the payload decoded, the times that order it."""

    event_id: uuid.UUID
    type: str
    position: int
    recorded_at: dt.datetime
    effective_date: dt.date
    data: Fact
    source_name: str = ""
    source_url: str | None = None
    published_at: dt.datetime | None = None
    fact: str = ""  # the stored fact key; empty: derived from the payload when folded


class EffectiveFact(msgspec.Struct, frozen=True, gc=False):
    """A fact as it reads after its amendments."""

    event_id: uuid.UUID
    type: str
    position: int
    effective_date: dt.date
    data: Fact
    corrected_by: tuple[uuid.UUID, ...] = ()
    fact: str = ""
    source: SourceRef | None = None
    rank: str = NORMAL
    shared: bool = False  # other reports of its fact are known, or it is ranked
    provenance: Provenance | None = None  # set on a fact merged from several reports


@dataclass(slots=True)
class _Chain:
    original: LoggedEvent
    corrections: list[tuple[uuid.UUID, Fact, dt.date | None]] = field(default_factory=list)
    withdrawn: set[uuid.UUID] = field(default_factory=set)
    retracted: bool = False


def in_valid_time_order(fact: EffectiveFact) -> tuple[dt.date, uuid.UUID]:
    """Order facts by effective date; facts of the same day by event id.

    The tie-break is arbitrary but fixed, so an answer never depends on the order in which
    facts were recorded, only on the facts (a later report of the same day does not win for
    being later: to replace a fact, correct it).
    """
    return fact.effective_date, fact.event_id


class Timeline(msgspec.Struct, frozen=True, gc=False):
    """Amended facts in valid-time order, with their effective dates for finding a day."""

    facts: list[EffectiveFact]
    dates: list[dt.date]

    def until(self, as_of: dt.date) -> list[EffectiveFact]:
        """The facts effective on or before ``as_of``, in valid-time order."""
        return self.facts[: bisect.bisect_right(self.dates, as_of)]


def timeline(facts: Iterable[EffectiveFact]) -> Timeline:
    """Order amended facts in valid time (see ``in_valid_time_order``)."""
    ordered = sorted(facts, key=in_valid_time_order)
    return Timeline(ordered, [f.effective_date for f in ordered])


def logged(rows: Iterable[HistoryRow]) -> list[LoggedEvent]:
    """Decode stored events for the folds."""
    return [
        LoggedEvent(
            r.event_id,
            r.type,
            r.position,
            r.recorded_at,
            r.effective_date,
            decode_payload(r.type, r.data),
            r.source_name,
            r.source_url,
            r.published_at,
            r.fact,
        )
        for r in rows
    ]


class _Replay:
    """The log replayed up to an instant: originals, their amendments, and the ranks given."""

    def __init__(self) -> None:
        self.originals: dict[uuid.UUID, LoggedEvent] = {}  # in position order
        self.chains: dict[uuid.UUID, _Chain] = {}  # only for facts that have amendments
        self.root_of: dict[uuid.UUID, uuid.UUID] = {}  # correction id -> the fact it amends
        self.ranks: dict[uuid.UUID, tuple[uuid.UUID, str]] = {}  # rank id -> (fact, rank)
        self.withdrawn_ranks: set[uuid.UUID] = set()

    def correct(self, event: LoggedEvent) -> None:
        data = event.data
        assert isinstance(data, EventCorrected)
        root = self.root_of.get(data.target_event_id, data.target_event_id)
        original = self.originals.get(root)
        if original is None:
            return  # its target is not known yet at this instant
        chain = self.chains.get(root) or self.chains.setdefault(root, _Chain(original))
        payload = msgspec.convert(data.data, type(original.data))
        chain.corrections.append((event.event_id, payload, data.effective_date))
        self.root_of[event.event_id] = root

    def retract(self, event: LoggedEvent) -> None:
        retraction = event.data
        assert isinstance(retraction, EventRetracted)
        target = retraction.target_event_id
        if target in self.originals:
            chain = self.chains.get(target)
            if chain is None:
                chain = self.chains[target] = _Chain(self.originals[target])
            chain.retracted = True
        elif target in self.root_of:
            self.chains[self.root_of[target]].withdrawn.add(target)
        elif target in self.ranks:
            self.withdrawn_ranks.add(target)

    def rank(self, event: LoggedEvent) -> None:
        target: uuid.UUID = event.data.target_event_id  # type: ignore[attr-defined]
        root = self.root_of.get(target, target)
        if root in self.originals:
            self.ranks[event.event_id] = (root, event.data.rank)  # type: ignore[attr-defined]

    def standing_ranks(self) -> dict[uuid.UUID, str]:
        """Each ranked report's latest rank that was not withdrawn."""
        standing: dict[uuid.UUID, str] = {}
        for rank_id, (root, rank) in self.ranks.items():  # in position order
            if rank_id not in self.withdrawn_ranks:
                standing[root] = rank
        return standing


def effective_facts(events: Iterable[LoggedEvent], known_at: dt.datetime) -> list[EffectiveFact]:
    """Return the facts as known at ``known_at``, amended, in position order of the originals."""
    replay = _Replay()
    originals = replay.originals
    for event in sorted(events, key=_position):
        if event.recorded_at > known_at:
            continue
        kind = event.type
        if kind == EVENT_CORRECTED:
            replay.correct(event)
        elif kind == EVENT_RETRACTED:
            replay.retract(event)
        elif kind == REPORT_RANKED:
            replay.rank(event)
        else:
            originals[event.event_id] = event
    chains = replay.chains
    kept = [e for e in originals.values() if e.event_id not in chains or _kept(chains[e.event_id])]
    keys = [_key(e) for e in kept]
    reports = Counter(keys)
    ranks = replay.standing_ranks()
    facts = []
    for event, key in zip(kept, keys, strict=True):
        event_id = event.event_id
        rank = ranks.get(event_id, NORMAL) if ranks else NORMAL
        chain = chains.get(event_id) if chains else None
        applied: tuple[uuid.UUID, ...] = ()
        if chain is None:
            data, effective_date = event.data, event.effective_date
        else:
            data, effective_date, applied = _amended(chain)
        name = event.source_name
        source = (
            SourceRef(event_id, name, event.source_url, event.published_at, event.recorded_at)
            if name
            else None
        )
        shared = rank != NORMAL or reports[key] > 1
        facts.append(
            EffectiveFact(
                event_id,
                event.type,
                event.position,
                effective_date,
                data,
                applied,
                key[2],
                source,
                rank,
                shared,
            )
        )
    return facts


def _kept(chain: _Chain) -> bool:
    return not chain.retracted


def _key(event: LoggedEvent) -> tuple[str, str, str]:
    """The fact a report is about: its type, its stream's id and its fact key."""
    data: Any = event.data
    kind = event.type
    scope: str = data.rule_id if kind == EXPORT_RULE else data.company_id
    return kind, scope, event.fact or fact_key(data, event.effective_date) or ""


def _position(event: LoggedEvent) -> int:
    return event.position


def _amended(chain: _Chain) -> tuple[Fact, dt.date, tuple[uuid.UUID, ...]]:
    fact = chain.original
    data, effective_date, applied = fact.data, fact.effective_date, []
    for correction_id, payload, new_date in chain.corrections:
        if correction_id in chain.withdrawn:
            continue
        data, effective_date = payload, new_date or effective_date
        applied.append(correction_id)
    return data, effective_date, tuple(applied)
