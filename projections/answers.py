"""Point-in-time answers: read what the ledger knew at ``known_at``, fold it as of ``as_of``."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from dataclasses import dataclass
from typing import Annotated

import msgspec

from events.errors import FieldError, InvalidQueryError
from events.log import Connection, read_rules
from events.streams import company_stream, stream_id
from projections import lookups, projector
from projections.company import (
    CompanyState,
    DatedValuation,
    fold_company,
    restrictions,
    valuations_in_order,
)
from projections.disputes import DisputedFact, disputed_facts
from projections.provenance import SourceRef
from projections.rules import RuleState, rules_in_force
from projections.stream_cache import Snapshot, StreamCache
from projections.timeline import (
    EffectiveFact,
    LoggedEvent,
    Timeline,
    effective_facts,
    logged,
    timeline,
)

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_Instant = Annotated[dt.datetime, msgspec.Meta(tz=True)]


def parse_as_of(value: str | None) -> dt.date:
    """Parse ``as_of`` (a calendar date, default today in UTC) or refuse it naming the field."""
    if value is None:
        return dt.datetime.now(dt.UTC).date()
    try:
        if not _DATE.match(value):
            raise ValueError(value)
        return dt.date.fromisoformat(value)
    except ValueError:
        raise _bad("as_of", f"{value!r} is not a calendar date such as 2023-09-30") from None


def parse_known_at(value: str | None) -> dt.datetime:
    """Parse ``known_at`` (an RFC 3339 instant with offset, default now) or refuse it."""
    if value is None:
        return dt.datetime.now(dt.UTC)
    try:
        instant: dt.datetime = msgspec.convert(value, _Instant).astimezone(dt.UTC)
    except (msgspec.ValidationError, OverflowError):
        raise _bad(
            "known_at",
            f"{value!r} is not an RFC 3339 instant with an offset, such as 2023-10-21T08:00:00Z",
        ) from None
    return instant


def _bad(field: str, message: str) -> Exception:
    return InvalidQueryError(f"{field}: {message}", [FieldError(field, message)])


@dataclass(frozen=True, slots=True)
class Seen:
    """What an answer reflects: the log up to ``position``, as known at ``known_at``."""

    position: int
    known_at: dt.datetime


def _seen(history: Snapshot, position: int | None = None) -> Seen:
    return Seen(history.position if position is None else position, history.known_at)


class RuleCache:
    """The export rules, decoded once and kept until a rule event is appended.

    Every company query needs them and they change rarely, so they are read again only when
    the position of the latest rule event moves. The amended facts as known now are kept too,
    in valid-time order, with the rules in force folded once for each number of them effective
    by a date (the answer on ``as_of`` depends on nothing else); a query for an earlier
    ``known_at`` folds them afresh.
    """

    def __init__(self) -> None:
        self._position = -1
        self._events: list[LoggedEvent] = []
        self._now = timeline([])
        self._in_force_now: dict[int, list[RuleState]] = {}  # by facts effective, for self._now
        self._lock = asyncio.Lock()

    async def facts(
        self, conn: Connection, history: Snapshot, known_at: dt.datetime
    ) -> list[EffectiveFact]:
        """Return the rules' amended facts as known at ``known_at`` (within ``history``)."""
        return (await self._timeline(conn, history, known_at)).facts

    async def _timeline(
        self, conn: Connection, history: Snapshot, known_at: dt.datetime
    ) -> Timeline:
        if history.rules_position > self._position:
            async with self._lock:
                if history.rules_position > self._position:
                    events = logged(await read_rules(conn))
                    self._events = events
                    self._now = timeline(effective_facts(events, _END_OF_TIME))
                    self._in_force_now = {}
                    self._position = events[-1].position if events else 0
        last = self._events[-1] if self._events else None
        if last is None or (last.recorded_at <= known_at and last.position <= history.position):
            return self._now
        visible = [e for e in self._events if e.position <= history.position]
        return timeline(effective_facts(visible, known_at))

    async def in_force(
        self, conn: Connection, history: Snapshot, known_at: dt.datetime, as_of: dt.date
    ) -> list[RuleState]:
        """Return the rules in force on ``as_of`` as known at ``known_at``."""
        rules = await self._timeline(conn, history, known_at)
        effective = rules.until(as_of)
        if rules is not self._now:
            return rules_in_force(effective, as_of)
        answer = self._in_force_now.get(len(effective))
        if answer is None:
            answer = self._in_force_now[len(effective)] = rules_in_force(effective, as_of)
        return answer


_END_OF_TIME = dt.datetime.max.replace(tzinfo=dt.UTC)


async def company(
    conn: Connection,
    cache: StreamCache,
    rules: RuleCache,
    company_id: str,
    as_of: dt.date,
    known_at: dt.datetime,
) -> tuple[CompanyState | None, Seen]:
    """Return a company's state on ``as_of`` as known at ``known_at``, and what it reflects."""
    stream = company_stream(company_id)
    history = await cache.read(conn, [stream], known_at)
    ordered = history.facts(stream).until(as_of)
    if not ordered:
        return None, _seen(history)
    in_force = await rules.in_force(conn, history, known_at, as_of)
    return fold_company(company_id, ordered, in_force), _seen(history)


async def company_valuations(
    conn: Connection,
    cache: StreamCache,
    company_id: str,
    known_at: dt.datetime,
    as_of: dt.date | None,
) -> tuple[list[DatedValuation] | None, Seen]:
    """Return every valuation of a company as known at ``known_at`` (None: company unknown)."""
    stream = company_stream(company_id)
    history = await cache.read(conn, [stream], known_at)
    facts = history.facts(stream)
    if not facts.facts:
        return None, _seen(history)
    return valuations_in_order(facts.facts if as_of is None else facts.until(as_of)), _seen(history)


async def export_rules(
    conn: Connection,
    cache: StreamCache,
    rules: RuleCache,
    as_of: dt.date,
    known_at: dt.datetime,
    target: str | None,
) -> tuple[list[RuleState], Seen]:
    """Return the export rules in force on ``as_of`` as known at ``known_at``."""
    history = await cache.read(conn, [], known_at)
    facts = await rules.facts(conn, history, known_at)
    return rules_in_force(facts, as_of, target), _seen(history)


async def companies(
    conn: Connection,
    cache: StreamCache,
    rules: RuleCache,
    as_of: dt.date,
    known_at: dt.datetime,
    after: str | None,
    limit: int,
) -> tuple[list[CompanyState], Seen, str | None]:
    """Return a page of companies known on ``as_of``; the last company id continues it."""
    indexed = (await projector.status(conn)).position  # before the lookup it bounds
    ids = await lookups.company_ids(conn, after, limit)
    streams = [company_stream(company_id) for company_id in ids]
    history = await cache.read(conn, streams, known_at)
    in_force = await rules.in_force(conn, history, known_at, as_of)
    found = []
    for stream in streams:
        company_id = stream_id(stream)
        state = fold_company(company_id, history.facts(stream).until(as_of), in_force)
        if state is not None:
            found.append(state)
    last = ids[-1] if len(ids) == limit else None
    return found, _seen(history, min(history.position, indexed)), last


async def company_disputes(
    conn: Connection,
    cache: StreamCache,
    rules: RuleCache,
    company_id: str,
    as_of: dt.date,
    known_at: dt.datetime,
) -> tuple[list[DisputedFact] | None, Seen]:
    """Return the company's facts on which sources disagree (None: company unknown)."""
    stream = company_stream(company_id)
    history = await cache.read(conn, [stream], known_at)
    ordered = history.facts(stream).until(as_of)
    state = fold_company(company_id, ordered, [])
    if state is None:
        return None, _seen(history)
    in_force = await rules.in_force(conn, history, known_at, as_of)
    restricting = {r.rule_id for r in restrictions(company_id, state.jurisdiction, in_force)}
    mine = [rule for rule in in_force if rule.rule_id in restricting]
    return disputed_facts(ordered, mine), _seen(history)


Holdings = list[tuple[str, list[str], list[SourceRef]]]


async def portfolio(
    conn: Connection, cache: StreamCache, investor_id: str, as_of: dt.date, known_at: dt.datetime
) -> tuple[Holdings | None, Seen]:
    """Return the companies and rounds an investor took part in (None: investor unknown).

    Each company comes with the reports that named the investor in those rounds.
    """
    indexed = (await projector.status(conn)).position  # before the lookup it bounds
    links = await lookups.investor_company_ids(conn, investor_id)
    streams = [company_stream(company_id) for company_id, _ in links]
    history = await cache.read(conn, streams, known_at)
    seen = _seen(history, min(history.position, indexed))
    if not any(first <= history.position for _, first in links):
        return None, seen  # no round naming the investor was recorded by known_at
    holdings = []
    for stream in streams:
        company_id = stream_id(stream)
        state = fold_company(company_id, history.facts(stream).until(as_of), [])
        if state is None:
            continue
        rounds: list[str] = []
        naming: dict[object, SourceRef] = {}
        for round_ in state.rounds:
            for investor in round_.investors:
                if investor.investor_id == investor_id:
                    rounds.append(round_.round_name)
                    naming.update((s.event_id, s) for s in investor.sources)
        if rounds:
            holdings.append((company_id, rounds, sorted(naming.values(), key=_published)))
    return holdings, seen


def _published(source: SourceRef) -> tuple[dt.datetime, str]:
    return source.published_at or _OLDEST, str(source.event_id)


_OLDEST = dt.datetime.min.replace(tzinfo=dt.UTC)
