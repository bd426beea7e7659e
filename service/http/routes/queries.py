"""Point-in-time queries: companies, valuations, portfolios, export rules, disputes, sources."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.params import PathParameter, QueryParameter

from events import log
from events.chain import format_instant
from events.codes import country_codes
from events.vocabulary import SLUG_PATTERN, TEXT_PATTERN
from projections import answers
from service import proven
from service.http.auth import BEARER, SCOPE_OPT
from service.http.dependencies import Checkpoints, Reads
from service.http.examples import DISPUTES_RESPONSE, SOURCES_RESPONSE
from service.http.problems import problem
from service.schemas import (
    Company,
    CompanyDisputeList,
    CompanyPage,
    CompanySummary,
    ExportRules,
    Holding,
    Portfolio,
    SourceCount,
    SourcePage,
    Valuations,
)

Slug = Annotated[str, PathParameter(pattern=SLUG_PATTERN)]
# Parsed by projections/answers.py (for messages that say what is wrong); typed for the document.
AsOf = Annotated[
    str | None,
    QueryParameter(
        description="a date: facts effective on or before it (default today, UTC, by the "
        "database's clock)",
        schema_extra={"format": "date"},
    ),
]
KnownAt = Annotated[
    str | None,
    QueryParameter(
        description="an RFC 3339 instant with an offset: events recorded by then "
        "(default now: the newest event's recorded_at)",
        schema_extra={"format": "date-time"},
    ),
]
MinPosition = Annotated[
    int | None,
    QueryParameter(ge=0, le=2**63 - 1, description="wait until the ledger has reached it"),
]


WithProof = Annotated[
    bool,
    QueryParameter(
        description="also return the signed checkpoint, the events folded and their inclusion "
        "proofs; the answer is then as of the checkpoint"
    ),
]


def _no_fact(company_id: str, known_at: str | None, by: str, seen: dt.datetime) -> Exception:
    """The 404 for a company unknown, naming ``known_at`` when that is what hid it."""
    if known_at is None:
        return problem(404, f"the ledger holds no fact about {company_id!r}{by}")
    instant = _instant(seen)
    return problem(404, f"the ledger held no fact about {company_id!r}{by} as known at {instant}")


def _instant(value: dt.datetime) -> str:
    return format_instant(value)


def _moment(as_of: str | None, known_at: str | None) -> tuple[dt.date | None, dt.datetime | None]:
    """Parse the day the facts are effective on and the instant they were known by.

    Either may be None: the answer then takes today and now from the database (its snapshot),
    never from this process's clock.
    """
    return answers.parse_as_of(as_of), answers.parse_known_at(known_at)


class QueriesController(Controller):
    """The point-in-time read side."""

    security = BEARER

    opt = {SCOPE_OPT: "events:read"}  # noqa: RUF012 (Litestar's own attribute)

    @get("/companies/{company_id:str}")
    async def company(
        self,
        reads: Reads,
        checkpoints: Checkpoints,
        company_id: Slug,
        as_of: AsOf = None,
        known_at: KnownAt = None,
        min_position: MinPosition = None,
        proof: WithProof = False,
    ) -> Company:
        """Return a company's state on ``as_of`` as the ledger knew it at ``known_at``."""
        day, instant = _moment(as_of, known_at)
        if proof:
            signed = await checkpoints.signed(min_position)
            found = await reads.primary(
                lambda conn: proven.company(
                    conn, signed, checkpoints.memory, company_id, day, instant
                )
            )
            if found is None:
                raise problem(404, f"the ledger holds no fact about {company_id!r}")
            return found
        state, seen = await reads.answer(
            min_position,
            lambda conn: answers.company(
                conn, reads.streams, reads.rules, company_id, day, instant
            ),
        )
        if state is None:
            raise _no_fact(company_id, known_at, f" effective by {seen.as_of}", seen.known_at)
        fields = msgspec.structs.asdict(state)
        return Company(
            **fields, as_of=seen.as_of, known_at=_instant(seen.known_at), position=seen.position
        )

    @get("/companies/{company_id:str}/valuations")
    async def valuations(
        self,
        reads: Reads,
        checkpoints: Checkpoints,
        company_id: Slug,
        known_at: KnownAt = None,
        as_of: AsOf = None,
        min_position: MinPosition = None,
        proof: WithProof = False,
    ) -> Valuations:
        """Return every valuation of a company, in effective-date order."""
        day, instant = _moment(as_of, known_at)
        if proof:
            signed = await checkpoints.signed(min_position)
            shown = await reads.primary(
                lambda conn: proven.valuations(
                    conn, signed, checkpoints.memory, company_id, day, instant
                )
            )
            if shown is None:
                raise problem(404, f"the ledger holds no fact about {company_id!r}")
            return shown
        found, seen = await reads.answer(
            min_position,
            lambda conn: answers.company_valuations(conn, reads.streams, company_id, instant, day),
        )
        if found is None:
            raise _no_fact(company_id, known_at, "", seen.known_at)
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
        reads: Reads,
        as_of: AsOf = None,
        known_at: KnownAt = None,
        after: Annotated[str | None, QueryParameter(pattern=SLUG_PATTERN)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        min_position: MinPosition = None,
    ) -> CompanyPage:
        """Return companies known on ``as_of`` in id order, with their latest valuation."""
        day, instant = _moment(as_of, known_at)
        found, seen, last = await reads.answer(
            min_position,
            lambda conn: answers.companies(
                conn, reads.streams, reads.rules, day, instant, after, limit
            ),
            read_models=True,
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
            as_of=seen.as_of,
            known_at=_instant(seen.known_at),
            position=seen.position,
        )

    @get("/investors/{investor_id:str}/portfolio")
    async def portfolio(
        self,
        reads: Reads,
        checkpoints: Checkpoints,
        investor_id: Slug,
        as_of: AsOf = None,
        known_at: KnownAt = None,
        min_position: MinPosition = None,
        proof: WithProof = False,
    ) -> Portfolio:
        """Return the companies an investor took part in, with the rounds."""
        day, instant = _moment(as_of, known_at)
        if proof:
            signed = await checkpoints.signed(min_position)
            held = await reads.primary(
                lambda conn: proven.portfolio(
                    conn, signed, checkpoints.memory, investor_id, day, instant
                )
            )
            if held is None:
                raise problem(404, f"no round in the ledger names the investor {investor_id!r}")
            return held
        holdings, seen = await reads.answer(
            min_position,
            lambda conn: answers.portfolio(conn, reads.streams, investor_id, day, instant),
            read_models=True,
        )
        if holdings is None:
            raise problem(404, f"no round in the ledger names the investor {investor_id!r}")
        return Portfolio(
            investor_id=investor_id,
            companies=[Holding(c, r, sources) for c, r, sources in holdings],
            as_of=seen.as_of,
            known_at=_instant(seen.known_at),
            position=seen.position,
        )

    @get("/export-rules")
    async def export_rules(
        self,
        reads: Reads,
        checkpoints: Checkpoints,
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
        proof: WithProof = False,
    ) -> ExportRules:
        """Return the export rules in force on ``as_of`` as known at ``known_at``."""
        day, instant = _moment(as_of, known_at)
        if proof:
            signed = await checkpoints.signed(min_position)
            return await reads.primary(
                lambda conn: proven.export_rules(
                    conn, signed, checkpoints.memory, day, instant, target_jurisdiction
                )
            )
        rules, seen = await reads.answer(
            min_position,
            lambda conn: answers.export_rules(
                conn, reads.streams, reads.rules, day, instant, target_jurisdiction
            ),
        )
        return ExportRules(
            rules=rules, as_of=seen.as_of, known_at=_instant(seen.known_at), position=seen.position
        )

    @get("/companies/{company_id:str}/disputes", responses=DISPUTES_RESPONSE)
    async def disputes(
        self,
        reads: Reads,
        company_id: Slug,
        as_of: AsOf = None,
        known_at: KnownAt = None,
        min_position: MinPosition = None,
    ) -> CompanyDisputeList:
        """Return the company's facts on which sources disagree, with both sides."""
        day, instant = _moment(as_of, known_at)
        found, seen = await reads.answer(
            min_position,
            lambda conn: answers.company_disputes(
                conn, reads.streams, reads.rules, company_id, day, instant
            ),
        )
        if found is None:
            raise problem(404, f"the ledger holds no fact about {company_id!r} by {seen.as_of}")
        return CompanyDisputeList(
            company_id=company_id,
            facts=found,
            as_of=seen.as_of,
            known_at=_instant(seen.known_at),
            position=seen.position,
        )

    @get("/sources", responses=SOURCES_RESPONSE)
    async def sources(
        self,
        reads: Reads,
        name: Annotated[
            str | None,
            QueryParameter(
                min_length=1,
                max_length=200,
                pattern=TEXT_PATTERN,
                description="only sources whose name contains it, ignoring case",
            ),
        ] = None,
        after: Annotated[
            str | None,
            QueryParameter(
                max_length=200, pattern=TEXT_PATTERN, description="the last name of a page"
            ),
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> SourcePage:
        """Return sources in name order, each with how many reports it gave."""
        found = await reads.read(lambda conn: log.read_sources(conn, after or "", limit, name))
        last = found[-1][0] if len(found) == limit else None
        return SourcePage(
            sources=[SourceCount(name=n, reports=count) for n, count in found], next_after=last
        )
