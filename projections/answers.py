"""Point-in-time answers: read what the ledger knew at ``known_at``, fold it as of ``as_of``."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from dataclasses import dataclass
from typing import Annotated

import msgspec

from events.errors import FieldError, InvalidQueryError
from events.exactness import finer_than_microseconds, instant_message
from events.log import Connection, read_rules
from events.streams import company_stream, stream_id
from projections import lookups, projector
from projections.company import (
    CompanyState,
    DatedValuation,
    fold_company,
    fold_shown,
    investor_holding,
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


def parse_as_of(value: str | None) -> dt.date | None:
    """Parse ``as_of`` (a calendar date; None: today) or refuse it naming the field."""
    if value is None:
        return None
    try:
        if not _DATE.match(value):
            raise ValueError(value)
        return dt.date.fromisoformat(value)
    except ValueError:
        raise _bad("as_of", f"{value!r} is not a calendar date such as 2023-09-30") from None


def parse_known_at(value: str | None) -> dt.datetime | None:
    """Parse ``known_at`` (an RFC 3339 instant with offset; None: now) or refuse it."""
    if value is None:
        return None
    if finer_than_microseconds(value):  # it would be rounded, and could take in a later event
        raise _bad("known_at", instant_message(value))
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


# The defaults, "now" and "today", come from the database, through the snapshot an answer is
# read from: "now" is the head (the last recorded_at), "today" the database's date in UTC. The
# service's own clock is never compared with recorded_at, which the database stamps, so an
# answer never depends on two clocks agreeing: a service whose clock is behind still sees the
# write it was just acknowledged, and one whose clock is ahead reports no instant that a later
# event could still be recorded at.


@dataclass(frozen=True, slots=True)
class Seen:
    """What an answer reflects: the log up to ``position``, as known at ``known_at``."""

    position: int
    known_at: dt.datetime
    as_of: dt.date  # the day it answers for: the one asked, else the database's today


def _seen(history: Snapshot, as_of: dt.date, position: int | None = None) -> Seen:
    return Seen(history.position if position is None else position, history.known_at, as_of)


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

    async def facts(self, conn: Connection, history: Snapshot) -> list[EffectiveFact]:
        """Return the rules' amended facts as ``history`` knows them."""
        return (await self._timeline(conn, history)).facts

    async def _timeline(self, conn: Connection, history: Snapshot) -> Timeline:
        known_at = history.known_at
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
        self, conn: Connection, history: Snapshot, as_of: dt.date
    ) -> list[RuleState]:
        """Return the rules in force on ``as_of`` as ``history`` knows them."""
        rules = await self._timeline(conn, history)
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
    as_of: dt.date | None,
    known_at: dt.datetime | None,
) -> tuple[CompanyState | None, Seen]:
    """Return a company's state on ``as_of`` as known at ``known_at``, and what it reflects."""
    stream = company_stream(company_id)
    history = await cache.read(conn, [stream], known_at)
    day = as_of or history.today
    facts = history.merged(stream).until(day)
    if not facts:
        return None, _seen(history, day)
    in_force = await rules.in_force(conn, history, day)
    return fold_shown(company_id, facts, in_force), _seen(history, day)


async def company_valuations(
    conn: Connection,
    cache: StreamCache,
    company_id: str,
    known_at: dt.datetime | None,
    as_of: dt.date | None,
) -> tuple[list[DatedValuation] | None, Seen]:
    """Return every valuation of a company as known at ``known_at`` (None: company unknown)."""
    stream = company_stream(company_id)
    history = await cache.read(conn, [stream], known_at)
    facts = history.facts(stream)
    seen = _seen(history, as_of or history.today)
    if not facts.facts:
        return None, seen
    return valuations_in_order(facts.facts if as_of is None else facts.until(as_of)), seen


async def export_rules(
    conn: Connection,
    cache: StreamCache,
    rules: RuleCache,
    as_of: dt.date | None,
    known_at: dt.datetime | None,
    target: str | None,
) -> tuple[list[RuleState], Seen]:
    """Return the export rules in force on ``as_of`` as known at ``known_at``."""
    history = await cache.read(conn, [], known_at)
    day = as_of or history.today
    facts = await rules.facts(conn, history)
    return rules_in_force(facts, day, target), _seen(history, day)


async def companies(
    conn: Connection,
    cache: StreamCache,
    rules: RuleCache,
    as_of: dt.date | None,
    known_at: dt.datetime | None,
    after: str | None,
    limit: int,
) -> tuple[list[CompanyState], Seen, str | None]:
    """Return a page of companies known on ``as_of``; the last company id continues it."""
    indexed = (await projector.status(conn)).position  # before the lookup it bounds
    ids = await lookups.company_ids(conn, after, limit)
    streams = [company_stream(company_id) for company_id in ids]
    history = await cache.read(conn, streams, known_at)
    day = as_of or history.today
    in_force = await rules.in_force(conn, history, day)
    found = []
    for stream in streams:
        company_id = stream_id(stream)
        state = fold_shown(company_id, history.merged(stream).until(day), in_force)
        if state is not None:
            found.append(state)
    last = ids[-1] if len(ids) == limit else None
    return found, _seen(history, day, min(history.position, indexed)), last


async def company_disputes(
    conn: Connection,
    cache: StreamCache,
    rules: RuleCache,
    company_id: str,
    as_of: dt.date | None,
    known_at: dt.datetime | None,
) -> tuple[list[DisputedFact] | None, Seen]:
    """Return the company's facts on which sources disagree (None: company unknown)."""
    stream = company_stream(company_id)
    history = await cache.read(conn, [stream], known_at)
    day = as_of or history.today
    ordered = history.facts(stream).until(day)
    state = fold_company(company_id, ordered, [])
    if state is None:
        return None, _seen(history, day)
    in_force = await rules.in_force(conn, history, day)
    restricting = {r.rule_id for r in restrictions(company_id, state.jurisdiction, in_force)}
    mine = [rule for rule in in_force if rule.rule_id in restricting]
    return disputed_facts(ordered, mine), _seen(history, day)


Holdings = list[tuple[str, list[str], list[SourceRef]]]


async def portfolio(
    conn: Connection,
    cache: StreamCache,
    investor_id: str,
    as_of: dt.date | None,
    known_at: dt.datetime | None,
) -> tuple[Holdings | None, Seen]:
    """Return the companies and rounds an investor took part in (None: investor unknown).

    Each company comes with the reports that named the investor in those rounds.
    """
    indexed = (await projector.status(conn)).position  # before the lookup it bounds
    links = await lookups.investor_company_ids(conn, investor_id)
    streams = [company_stream(company_id) for company_id, _ in links]
    history = await cache.read(conn, streams, known_at)
    day = as_of or history.today
    seen = _seen(history, day, min(history.position, indexed))
    if not any(first <= history.position for _, first in links):
        return None, seen  # no round naming the investor was recorded by known_at
    holdings = []
    for stream in streams:
        company_id = stream_id(stream)
        state = fold_shown(company_id, history.merged(stream).until(day), [])
        if state is None:
            continue
        rounds, naming = investor_holding(state, investor_id)
        if rounds:
            holdings.append((company_id, rounds, naming))
    return holdings, seen
