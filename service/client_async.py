"""The asynchronous form of the client: the same requests as LedgerClient, awaited."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import TypeVar

import httpx

from service import client_requests as calls
from service import client_subscribe as follow
from service import client_verify as proving
from service.client_requests import Day, Envelope, Instant, Request, RetryPolicy
from service.client_types import (
    Company,
    CompanyDisputeList,
    CompanyPage,
    DatedValuation,
    Digest,
    Event,
    EventPage,
    ExportRules,
    Portfolio,
    Receipt,
    SourcePage,
)

T = TypeVar("T")
log = logging.getLogger("service.client")


class AsyncLedgerClient:
    """Append, read and ask point-in-time questions over HTTP, from asyncio code."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy = calls.DEFAULT_RETRY,
        transport: httpx.AsyncBaseTransport | None = None,
        key: str | None = None,
    ) -> None:
        """``key``: the ledger's verifier key (``ledger keys public``), for ``verified=True``."""
        self._retry = retry
        self._key = key
        self._http = httpx.AsyncClient(
            **calls.client_options(base_url, token, timeout), transport=transport
        )

    async def __aenter__(self) -> AsyncLedgerClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def _send(self, request: Request[T]) -> T:
        """Send a request (again while the service asks to wait, within bounds); decode it."""
        attempt, waited = 1, 0.0
        while True:
            try:
                answer = await self._http.request(
                    request.method,
                    request.path,
                    params=request.params,
                    content=request.body,
                    headers=request.headers,
                )
            except httpx.TransportError as error:
                raise calls.unavailable(request, error) from error
            seconds = self._retry.wait(answer, attempt, waited)
            if seconds is None:
                return calls.decode(request, answer)
            calls.log_wait(log, request, answer, seconds)
            await asyncio.sleep(seconds)
            attempt, waited = attempt + 1, waited + seconds

    # --------------------------------------------------------------------- the log

    async def append(self, envelope: Envelope) -> Receipt:
        """Append one envelope; an identical retry answers with the original receipt."""
        return await self._send(calls.append(envelope))

    async def append_batch(self, envelopes: Sequence[Envelope]) -> list[Receipt]:
        """Append envelopes all or none; return their receipts in order."""
        return (await self._send(calls.append_batch(envelopes))).receipts

    async def events(
        self,
        after: int = 0,
        limit: int = 100,
        types: Sequence[str] | None = None,
        stream: str | None = None,
    ) -> EventPage:
        """Return one page of events after a position."""
        return await self._send(calls.events(after, limit, types, stream))

    async def iter_events(
        self, after: int = 0, types: Sequence[str] | None = None, stream: str | None = None
    ) -> AsyncIterator[Event]:
        """Yield every event after a position, page by page, up to the end of the log."""
        page = await self.events(after, 1000, types, stream)
        for event in page.events:
            yield event
        while page.next_after is not None:
            page = await self.events(page.next_after, 1000, types, stream)
            for event in page.events:
                yield event

    async def subscribe(
        self,
        after: int = 0,
        types: Sequence[str] | None = None,
        stream: str | None = None,
        *,
        max_wait: float = follow.RECONNECT_MAX_SECONDS,
    ) -> AsyncGenerator[Event, None]:
        """Yield every matching event after ``after``, then each new one, for ever; it
        reconnects by itself and never yields an event twice (see LedgerClient.subscribe)."""
        follower = follow.Follower(after, types, stream)
        while True:
            options = follower.request()
            try:
                async with self._http.stream(
                    "GET", follow.PATH, **options, timeout=follow.STREAM_TIMEOUT
                ) as answer:
                    if answer.status_code >= 400:
                        await answer.aread()
                    follower.check(answer)
                    async for line in answer.aiter_lines():
                        event = follower.feed(line)
                        if event is not None:
                            yield event
            except (httpx.TransportError, follow.RetryLaterError):
                pass
            await asyncio.sleep(follower.pause(max_wait))

    async def event(self, event_id: uuid.UUID | str) -> Event:
        """Return one event by id."""
        return await self._send(calls.event(event_id))

    async def digest(self) -> Digest:
        """Return the position and hash of the head (needs the admin scope)."""
        return await self._send(calls.digest())

    # --------------------------------------------------------------------- point in time

    async def _ask(self, request: Request[T], verified: bool, subject: str | None) -> T:
        """Send a query; ``verified``: with its proof, checked (else VerificationError)."""
        if not verified:
            return await self._send(request)
        key = proving.verifier(self._key)
        answer = await self._send(proving.with_proof(request))
        return proving.checked(request, answer, key, subject)

    async def company(
        self,
        company_id: str,
        as_of: Day = None,
        known_at: Instant = None,
        min_position: int | None = None,
        *,
        verified: bool = False,
    ) -> Company:
        """Return a company's state as of a date, as the ledger knew it at an instant."""
        request = calls.company(company_id, as_of, known_at, min_position)
        return await self._ask(request, verified, company_id)

    async def valuations(
        self,
        company_id: str,
        as_of: Day = None,
        known_at: Instant = None,
        min_position: int | None = None,
        *,
        verified: bool = False,
    ) -> list[DatedValuation]:
        """Return every valuation of a company, in effective-date order."""
        request = calls.valuations(company_id, as_of, known_at, min_position)
        return (await self._ask(request, verified, company_id)).valuations

    async def companies(
        self,
        as_of: Day = None,
        known_at: Instant = None,
        after: str | None = None,
        limit: int = 100,
        min_position: int | None = None,
    ) -> CompanyPage:
        """Return a page of companies with their latest valuation."""
        return await self._send(calls.companies(as_of, known_at, after, limit, min_position))

    async def portfolio(
        self,
        investor_id: str,
        as_of: Day = None,
        known_at: Instant = None,
        min_position: int | None = None,
        *,
        verified: bool = False,
    ) -> Portfolio:
        """Return the companies an investor took part in (pass ``min_position`` to read your
        own writes: portfolios come from read models that trail the log by a moment)."""
        request = calls.portfolio(investor_id, as_of, known_at, min_position)
        return await self._ask(request, verified, investor_id)

    async def export_rules(
        self,
        as_of: Day = None,
        known_at: Instant = None,
        target_jurisdiction: str | None = None,
        min_position: int | None = None,
        *,
        verified: bool = False,
    ) -> ExportRules:
        """Return the export rules in force."""
        request = calls.export_rules(as_of, known_at, target_jurisdiction, min_position)
        return await self._ask(request, verified, target_jurisdiction)

    async def disputes(
        self,
        company_id: str,
        as_of: Day = None,
        known_at: Instant = None,
        min_position: int | None = None,
    ) -> CompanyDisputeList:
        """Return the company's facts on which sources disagree, each field with both sides."""
        return await self._send(calls.disputes(company_id, as_of, known_at, min_position))

    async def sources(
        self, name: str | None = None, after: str | None = None, limit: int = 100
    ) -> SourcePage:
        """Return sources in name order (those whose name contains ``name``), with report counts."""
        return await self._send(calls.sources(name, after, limit))
