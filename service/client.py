"""A typed Python client for the ledger, synchronous and asynchronous, and a webhook verifier.

    from service.client import LedgerClient

    with LedgerClient("http://127.0.0.1:8000", token) as ledger:
        receipt = ledger.append({"type": "valuation_reported", ...})
        state = ledger.company("zhipu-ai", as_of="2023-09-30", min_position=receipt.position)
        print(state.valuation.value if state.valuation else "no valuation")  # a Decimal

:class:`AsyncLedgerClient` has the same methods, awaited. Answers come back as the Structs of
service/client_types.py: money as ``Decimal``, instants as ``datetime``, dates as ``date``.
A refusal raises :class:`ProblemError` (status, title, detail, field errors); a network failure
raises :class:`LedgerUnavailableError`; both are :class:`LedgerError`. A 429 or 503 is sent
again after the ``Retry-After`` it carries, within the bounds of a :class:`RetryPolicy`.
``subscribe`` follows new events as they are appended, reconnecting by itself. Given the
ledger's verifier key (``key=``), ``company``, ``valuations``, ``portfolio`` and ``export_rules``
take ``verified=True``: the answer comes with its signed checkpoint and inclusion proofs and is
folded again here, or :class:`VerificationError` is raised.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Generator, Iterator, Sequence
from typing import TypeVar

import httpx

from service import client_requests as calls
from service import client_subscribe as follow
from service import client_verify as proving
from service.client_async import AsyncLedgerClient
from service.client_requests import (
    Day,
    Envelope,
    FieldProblem,
    Instant,
    LedgerError,
    LedgerUnavailableError,
    ProblemError,
    Request,
    RetryPolicy,
)
from service.client_types import (
    Company,
    CompanyDisputeList,
    CompanyPage,
    DatedValuation,
    Digest,
    Event,
    EventPage,
    ExportRules,
    Money,
    Portfolio,
    Receipt,
    SourcePage,
)
from service.client_verify import VerificationError
from service.client_webhooks import WebhookMessage, WebhookVerificationError, verify_webhook

__all__ = [
    "AsyncLedgerClient",
    "Company",
    "CompanyDisputeList",
    "CompanyPage",
    "DatedValuation",
    "Digest",
    "Event",
    "EventPage",
    "ExportRules",
    "FieldProblem",
    "LedgerClient",
    "LedgerError",
    "LedgerUnavailableError",
    "Money",
    "Portfolio",
    "ProblemError",
    "Receipt",
    "RetryPolicy",
    "SourcePage",
    "VerificationError",
    "WebhookMessage",
    "WebhookVerificationError",
    "verify_webhook",
]

T = TypeVar("T")
log = logging.getLogger(__name__)


class LedgerClient:
    """Append, read and ask point-in-time questions over HTTP (synchronous, thread-safe)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy = calls.DEFAULT_RETRY,
        transport: httpx.BaseTransport | None = None,
        key: str | None = None,
    ) -> None:
        """``key``: the ledger's verifier key (``ledger keys public``), for ``verified=True``."""
        self._retry = retry
        self._key = key
        self._http = httpx.Client(
            **calls.client_options(base_url, token, timeout), transport=transport
        )

    def __enter__(self) -> LedgerClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def _send(self, request: Request[T]) -> T:
        """Send a request (again while the service asks to wait, within bounds); decode it."""
        attempt, waited = 1, 0.0
        while True:
            try:
                answer = self._http.request(
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
            time.sleep(seconds)
            attempt, waited = attempt + 1, waited + seconds

    # --------------------------------------------------------------------- the log

    def append(self, envelope: Envelope) -> Receipt:
        """Append one envelope; an identical retry answers with the original receipt."""
        return self._send(calls.append(envelope))

    def append_batch(self, envelopes: Sequence[Envelope]) -> list[Receipt]:
        """Append envelopes all or none; return their receipts in order."""
        return self._send(calls.append_batch(envelopes)).receipts

    def events(
        self,
        after: int = 0,
        limit: int = 100,
        types: Sequence[str] | None = None,
        stream: str | None = None,
    ) -> EventPage:
        """Return one page of events after a position."""
        return self._send(calls.events(after, limit, types, stream))

    def iter_events(
        self, after: int = 0, types: Sequence[str] | None = None, stream: str | None = None
    ) -> Iterator[Event]:
        """Yield every event after a position, page by page, up to the end of the log."""
        page = self.events(after, 1000, types, stream)
        yield from page.events
        while page.next_after is not None:
            page = self.events(page.next_after, 1000, types, stream)
            yield from page.events

    def subscribe(
        self,
        after: int = 0,
        types: Sequence[str] | None = None,
        stream: str | None = None,
        *,
        max_wait: float = follow.RECONNECT_MAX_SECONDS,
    ) -> Generator[Event, None, None]:
        """Yield every matching event after ``after``, then each new one, for ever.

        Follows ``GET /events/subscribe``; when the connection drops or the service cuts a
        slow reader off, it reconnects (waiting up to ``max_wait`` seconds between tries) and
        resumes after the last event yielded, so no event is skipped or yielded twice. A
        refusal other than 429 or 503 raises :class:`ProblemError`.
        """
        follower = follow.Follower(after, types, stream)
        while True:
            options = follower.request()
            try:
                with self._http.stream(
                    "GET", follow.PATH, **options, timeout=follow.STREAM_TIMEOUT
                ) as answer:
                    if answer.status_code >= 400:
                        answer.read()
                    follower.check(answer)
                    for line in answer.iter_lines():
                        event = follower.feed(line)
                        if event is not None:
                            yield event
            except (httpx.TransportError, follow.RetryLaterError):
                pass
            time.sleep(follower.pause(max_wait))

    def event(self, event_id: uuid.UUID | str) -> Event:
        """Return one event by id."""
        return self._send(calls.event(event_id))

    def digest(self) -> Digest:
        """Return the position and hash of the head (needs the admin scope)."""
        return self._send(calls.digest())

    # --------------------------------------------------------------------- point in time

    def _ask(self, request: Request[T], verified: bool, subject: str | None) -> T:
        """Send a query; ``verified``: with its proof, checked (else VerificationError)."""
        if not verified:
            return self._send(request)
        key = proving.verifier(self._key)
        answer = self._send(proving.with_proof(request))
        return proving.checked(request, answer, key, subject)

    def company(
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
        return self._ask(request, verified, company_id)

    def valuations(
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
        return self._ask(request, verified, company_id).valuations

    def companies(
        self,
        as_of: Day = None,
        known_at: Instant = None,
        after: str | None = None,
        limit: int = 100,
        min_position: int | None = None,
    ) -> CompanyPage:
        """Return a page of companies with their latest valuation."""
        return self._send(calls.companies(as_of, known_at, after, limit, min_position))

    def portfolio(
        self,
        investor_id: str,
        as_of: Day = None,
        known_at: Instant = None,
        min_position: int | None = None,
        *,
        verified: bool = False,
    ) -> Portfolio:
        """Return the companies an investor took part in, with the rounds.

        Portfolios come from read models that trail the log by a moment: pass the position of
        a receipt as ``min_position`` to read your own writes.
        """
        request = calls.portfolio(investor_id, as_of, known_at, min_position)
        return self._ask(request, verified, investor_id)

    def export_rules(
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
        return self._ask(request, verified, target_jurisdiction)

    def disputes(
        self,
        company_id: str,
        as_of: Day = None,
        known_at: Instant = None,
        min_position: int | None = None,
    ) -> CompanyDisputeList:
        """Return the company's facts on which sources disagree, each field with both sides."""
        return self._send(calls.disputes(company_id, as_of, known_at, min_position))

    def sources(
        self, name: str | None = None, after: str | None = None, limit: int = 100
    ) -> SourcePage:
        """Return sources in name order (those whose name contains ``name``), with report counts."""
        return self._send(calls.sources(name, after, limit))
