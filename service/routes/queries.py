"""Point-in-time queries: companies, valuations, portfolios and export rules."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get
from litestar.params import PathParameter, QueryParameter
from msgspec import Struct

from events.chain import format_instant
from events.codes import country_codes
from events.log import head_position
from events.vocabulary import SLUG_PATTERN
from projections import answers as queries
from projections import projector
from projections.company import CompanyState, DatedValuation
from projections.rules import RuleState
from service.auth import BEARER, SCOPE_OPT
from service.problems import problem

Slug = Annotated[str, PathParameter(pattern=SLUG_PATTERN)]
# Parsed by projections/answers.py (for messages that say what is wrong); typed for the document.
AsOf = Annotated[
    str | None,
    QueryParameter(
        description="a date: facts effective on or before it (default today, UTC)",
        schema_extra={"format": "date"},
    ),
]
KnownAt = Annotated[
    str | None,
    QueryParameter(
        description="an RFC 3339 instant with an offset: events recorded by then (default now)",
        schema_extra={"format": "date-time"},
    ),
]
MinPosition = Annotated[
    int | None,
    QueryParameter(ge=0, le=2**63 - 1, description="wait until the ledger has reached it"),
]
MIN_POSITION_WAIT_SECONDS = 2.0


class Company(CompanyState, frozen=True, kw_only=True):
    """A company's state with the times it answers for."""

    as_of: dt.date
    known_at: str
    position: int


class CompanySummary(Struct, frozen=True, kw_only=True):
    """A company in a list: who it is and its latest valuation."""

    company_id: str
    name: str | None
    jurisdiction: str | None
    valuation: DatedValuation | None


class CompanyPage(Struct, frozen=True, kw_only=True):
    """A page of companies; ``next_after`` continues it, or is null at the end."""

    companies: list[CompanySummary]
    next_after: str | None
    as_of: dt.date
    known_at: str
    position: int


class Valuations(Struct, frozen=True, kw_only=True):
    """Every valuation of a company, in effective-date order."""

    company_id: str
    valuations: list[DatedValuation]
    as_of: dt.date | None
    known_at: str
    position: int


class Holding(Struct, frozen=True):
    """The rounds of one company an investor took part in."""

    company_id: str
    rounds: list[str]


class Portfolio(Struct, frozen=True, kw_only=True):
    """The companies an investor holds, through the rounds it took part in."""

    investor_id: str
    companies: list[Holding]
    as_of: dt.date
    known_at: str
    position: int


class ExportRules(Struct, frozen=True, kw_only=True):
    """The export rules in force."""

    rules: list[RuleState]
    as_of: dt.date
    known_at: str
    position: int


def _instant(value: dt.datetime) -> str:
    return format_instant(value)


class QueriesController(Controller):
    """The point-in-time read side."""

    security = BEARER

    opt = {SCOPE_OPT: "events:read"}  # noqa: RUF012 (Litestar's own attribute)

    @get("/companies/{company_id:str}")
    async def company(
        self,
        request: Request[Any, Any, Any],
        company_id: Slug,
        as_of: AsOf = None,
        known_at: KnownAt = None,
        min_position: MinPosition = None,
    ) -> Company:
        """Return a company's state on ``as_of`` as the ledger knew it at ``known_at``."""
        day, instant = queries.parse_as_of(as_of), queries.parse_known_at(known_at)
        async with request.app.state.pool.acquire() as conn:
            await _reach(conn, min_position)
            state, seen = await queries.company(
                conn, request.app.state.streams, request.app.state.rules, company_id, day, instant
            )
        if state is None:
            raise problem(404, f"the ledger holds no fact about {company_id!r} by {day}")
        fields = msgspec.structs.asdict(state)
        return Company(
            **fields, as_of=day, known_at=_instant(seen.known_at), position=seen.position
        )

    @get("/companies/{company_id:str}/valuations")
    async def valuations(
        self,
        request: Request[Any, Any, Any],
        company_id: Slug,
        known_at: KnownAt = None,
        as_of: AsOf = None,
        min_position: MinPosition = None,
    ) -> Valuations:
        """Return every valuation of a company, in effective-date order."""
        instant = queries.parse_known_at(known_at)
        day = queries.parse_as_of(as_of) if as_of is not None else None
        async with request.app.state.pool.acquire() as conn:
            await _reach(conn, min_position)
            found, seen = await queries.company_valuations(
                conn, request.app.state.streams, company_id, instant, day
            )
        if found is None:
            raise problem(404, f"the ledger holds no fact about {company_id!r}")
        return Valuations(
            company_id=company_id,
            valuations=found,
            as_of=day,
            known_at=_instant(seen.known_at),
            position=seen.position,
        )

    @get("/companies")
    async def companies(
        self,
        request: Request[Any, Any, Any],
        as_of: AsOf = None,
        known_at: KnownAt = None,
        after: Annotated[str | None, QueryParameter(pattern=SLUG_PATTERN)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        min_position: MinPosition = None,
    ) -> CompanyPage:
        """Return companies known on ``as_of`` in id order, with their latest valuation."""
        day, instant = queries.parse_as_of(as_of), queries.parse_known_at(known_at)
        async with request.app.state.pool.acquire() as conn:
            await _reach(conn, min_position, read_models=True)
            found, seen, last = await queries.companies(
                conn, request.app.state.streams, request.app.state.rules, day, instant, after, limit
            )
        summaries = [
            CompanySummary(
                company_id=s.company_id,
                name=s.name,
                jurisdiction=s.jurisdiction,
                valuation=s.valuation,
            )
            for s in found
        ]
        return CompanyPage(
            companies=summaries,
            next_after=last,
            as_of=day,
            known_at=_instant(seen.known_at),
            position=seen.position,
        )

    @get("/investors/{investor_id:str}/portfolio")
    async def portfolio(
        self,
        request: Request[Any, Any, Any],
        investor_id: Slug,
        as_of: AsOf = None,
        known_at: KnownAt = None,
        min_position: MinPosition = None,
    ) -> Portfolio:
        """Return the companies an investor took part in, with the rounds."""
        day, instant = queries.parse_as_of(as_of), queries.parse_known_at(known_at)
        async with request.app.state.pool.acquire() as conn:
            await _reach(conn, min_position, read_models=True)
            holdings, seen = await queries.portfolio(
                conn, request.app.state.streams, investor_id, day, instant
            )
        if holdings is None:
            raise problem(404, f"no round in the ledger names the investor {investor_id!r}")
        return Portfolio(
            investor_id=investor_id,
            companies=[Holding(c, r) for c, r in holdings],
            as_of=day,
            known_at=_instant(seen.known_at),
            position=seen.position,
        )

    @get("/export-rules")
    async def export_rules(
        self,
        request: Request[Any, Any, Any],
        as_of: AsOf = None,
        known_at: KnownAt = None,
        target_jurisdiction: Annotated[
            str | None,
            QueryParameter(
                pattern=r"^[A-Z]{2}$",
                description="ISO 3166-1 alpha-2",
                schema_extra={"enum": sorted(country_codes())},
            ),
        ] = None,
        min_position: MinPosition = None,
    ) -> ExportRules:
        """Return the export rules in force on ``as_of`` as known at ``known_at``."""
        day, instant = queries.parse_as_of(as_of), queries.parse_known_at(known_at)
        async with request.app.state.pool.acquire() as conn:
            await _reach(conn, min_position)
            rules, seen = await queries.export_rules(
                conn,
                request.app.state.streams,
                request.app.state.rules,
                day,
                instant,
                target_jurisdiction,
            )
        return ExportRules(
            rules=rules, as_of=day, known_at=_instant(seen.known_at), position=seen.position
        )


async def _reach(conn: Any, min_position: int | None, read_models: bool = False) -> None:
    """Wait (bounded) until the read models, if used, hold ``min_position``.

    Answers come from the log, whose head includes every acknowledged event (a receipt is
    given after its commit): a position beyond the head was never acknowledged, so that is
    answered at once rather than after the wait. The read models may trail the head by a
    moment; that is what the wait is for.
    """
    if min_position is None:
        return
    head = await head_position(conn)
    if min_position > head:
        raise problem(
            503,
            f"the ledger has not reached position {min_position} yet (its head is at {head}); "
            "retry shortly",
        )
    if not read_models:
        return
    deadline = time.monotonic() + MIN_POSITION_WAIT_SECONDS
    while (status := await projector.status(conn)).position < min_position:
        if status.error is not None:  # stopped on an event it cannot apply: no use waiting
            raise problem(
                503,
                f"the read models stopped at position {status.position}; retry later",
            )
        if time.monotonic() >= deadline:
            raise problem(
                503,
                f"the ledger has not reached position {min_position} yet; retry shortly",
            )
        await asyncio.sleep(0.02)
