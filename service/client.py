"""A small typed client for Python users of the ledger, and a verifier for its webhooks.

    from service.client import LedgerClient

    with LedgerClient("http://127.0.0.1:8000", token) as ledger:
        receipt = ledger.append({"type": "valuation_reported", ...})
        state = ledger.company("zhipu-ai", as_of="2023-09-30", min_position=receipt.position)
        print(state.valuation.value if state.valuation else "no valuation")

Answers are decoded into the same msgspec types the service encodes them from, so a field
that changes shape fails loudly here rather than in the caller's code. Errors are raised as
:class:`LedgerClientError` carrying the problem+json the service answered.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import re
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import httpx
import msgspec

from events.records import Receipt, RecordedEvent
from service.schemas import (
    Company,
    CompanyDisputes,
    CompanyPage,
    DatedValuation,
    ExportRules,
    Portfolio,
    SourcePage,
    Valuations,
)

T = TypeVar("T")
RECONNECT_MAX_SECONDS = 5.0  # the longest a subscription waits between reconnections
DEFAULT_TOLERANCE_SECONDS = 300  # Standard Webhooks: refuse messages older or newer than this
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class Event(RecordedEvent, frozen=True, kw_only=True):
    """An event as the ledger shows it (events/records.py), its JSON-valued fields decoded."""

    # The same fields, decoded rather than kept byte for byte as the service holds them.
    recorded_at: dt.datetime  # type: ignore[assignment]
    source: dict[str, Any]  # type: ignore[assignment]
    data: dict[str, Any]  # type: ignore[assignment]
    metadata: dict[str, Any] | None = None  # type: ignore[assignment]
    hash: str


class EventPage(msgspec.Struct, frozen=True):
    """A page of events; ``next_after`` continues it, or is None at the end."""

    events: list[Event]
    next_after: int | None


class Digest(msgspec.Struct, frozen=True, kw_only=True):
    """The head of the hash chain."""

    position: int
    hash: str
    recorded_at: str | None = None


class WebhookMessage(msgspec.Struct, frozen=True):
    """What a webhook delivers: the event's type, its recorded_at, and the event."""

    type: str
    timestamp: str
    data: Event


class _Batch(msgspec.Struct, frozen=True):
    receipts: list[Receipt]


class LedgerClientError(Exception):
    """The service refused a request; ``problem`` is its problem+json answer."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.title = str(problem.get("title", ""))
        self.detail = str(problem.get("detail", ""))
        self.errors: list[dict[str, str]] = list(problem.get("errors", []))
        super().__init__(f"{status} {self.title}: {self.detail}")


class WebhookVerificationError(Exception):
    """A webhook that is not authentic, or too old or too new to be accepted."""


class LedgerClient:
    """Append, read and ask point-in-time questions over HTTP (synchronous, thread-safe)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> LedgerClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def _call(
        self,
        method: str,
        path: str,
        into: type[T],
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> T:
        content = msgspec.json.encode(body) if body is not None else None
        headers = {"content-type": "application/json"} if content is not None else None
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        answer = self._http.request(method, path, params=query, content=content, headers=headers)
        if answer.status_code >= 400:
            try:
                problem = answer.json()
            except ValueError:
                problem = None
            if not isinstance(problem, dict):
                problem = {"title": answer.reason_phrase, "detail": answer.text[:500]}
            raise LedgerClientError(answer.status_code, problem)
        return msgspec.json.decode(answer.content, type=into)

    # --------------------------------------------------------------------- the log

    def append(self, envelope: Mapping[str, Any] | msgspec.Struct) -> Receipt:
        """Append one envelope; an identical retry answers with the original receipt."""
        return self._call("POST", "/events", Receipt, body=envelope)

    def append_batch(
        self, envelopes: Sequence[Mapping[str, Any] | msgspec.Struct]
    ) -> list[Receipt]:
        """Append envelopes all or none; return their receipts in order."""
        return self._call("POST", "/events", _Batch, body={"events": list(envelopes)}).receipts

    def events(
        self,
        after: int = 0,
        limit: int = 100,
        types: Sequence[str] | None = None,
        stream: str | None = None,
    ) -> EventPage:
        """Return one page of events after a position."""
        params = {"after": after, "limit": limit, "type": list(types) if types else None}
        return self._call("GET", "/events", EventPage, params={**params, "stream": stream})

    def iter_events(
        self, after: int = 0, types: Sequence[str] | None = None, stream: str | None = None
    ) -> Iterator[Event]:
        """Yield every event after a position, page by page, up to the end of the log."""
        while True:
            page = self.events(after, 1000, types, stream)
            yield from page.events
            if page.next_after is None:
                return
            after = page.next_after

    def subscribe(
        self,
        after: int = 0,
        types: Sequence[str] | None = None,
        stream: str | None = None,
        *,
        max_wait: float = RECONNECT_MAX_SECONDS,
    ) -> Iterator[Event]:
        """Yield every matching event after ``after``, then each new one, for ever.

        Follows ``GET /events/subscribe``; when the connection drops or the service cuts a
        slow reader off, it reconnects (waiting up to ``max_wait`` seconds between tries) and
        resumes after the last event yielded, so no event is skipped or yielded twice.
        """
        follower = _Follower(after, types, stream)
        while True:
            try:
                with self._http.stream(
                    "GET", "/events/subscribe", **follower.request(), timeout=_STREAM_TIMEOUT
                ) as answer:
                    body = answer.read() if answer.status_code >= 400 else b""
                    follower.check(answer.status_code, answer.headers, body)
                    for line in answer.iter_lines():
                        event = follower.feed(line)
                        if event is not None:
                            yield event
            except (httpx.TransportError, _RetryLaterError):
                pass
            time.sleep(follower.pause(max_wait))

    async def subscribe_async(
        self,
        after: int = 0,
        types: Sequence[str] | None = None,
        stream: str | None = None,
        *,
        max_wait: float = RECONNECT_MAX_SECONDS,
    ) -> AsyncIterator[Event]:
        """The same as :meth:`subscribe`, as an async iterator (on a connection of its own)."""
        follower = _Follower(after, types, stream)
        http = httpx.AsyncClient(base_url=self._http.base_url, headers=self._http.headers)
        async with http:
            while True:
                try:
                    async with http.stream(
                        "GET", "/events/subscribe", **follower.request(), timeout=_STREAM_TIMEOUT
                    ) as answer:
                        body = await answer.aread() if answer.status_code >= 400 else b""
                        follower.check(answer.status_code, answer.headers, body)
                        async for line in answer.aiter_lines():
                            event = follower.feed(line)
                            if event is not None:
                                yield event
                except (httpx.TransportError, _RetryLaterError):
                    pass
                await asyncio.sleep(follower.pause(max_wait))

    def event(self, event_id: uuid.UUID | str) -> Event:
        """Return one event by id."""
        return self._call("GET", f"/events/{_segment(str(event_id))}", Event)

    def digest(self) -> Digest:
        """Return the position and hash of the head (needs the admin scope)."""
        return self._call("GET", "/ledger/digest", Digest)

    # --------------------------------------------------------------------- point in time

    def company(
        self,
        company_id: str,
        as_of: dt.date | str | None = None,
        known_at: dt.datetime | str | None = None,
        min_position: int | None = None,
    ) -> Company:
        """Return a company's state as of a date, as the ledger knew it at an instant."""
        params = {"as_of": as_of, "known_at": known_at, "min_position": min_position}
        return self._call("GET", f"/companies/{_segment(company_id)}", Company, params=params)

    def valuations(
        self,
        company_id: str,
        as_of: dt.date | str | None = None,
        known_at: dt.datetime | str | None = None,
        min_position: int | None = None,
    ) -> list[DatedValuation]:
        """Return every valuation of a company, in effective-date order."""
        params = {"as_of": as_of, "known_at": known_at, "min_position": min_position}
        path = f"/companies/{_segment(company_id)}/valuations"
        return self._call("GET", path, Valuations, params=params).valuations

    def companies(
        self,
        as_of: dt.date | str | None = None,
        known_at: dt.datetime | str | None = None,
        after: str | None = None,
        limit: int = 100,
        min_position: int | None = None,
    ) -> CompanyPage:
        """Return a page of companies with their latest valuation."""
        params = {
            "as_of": as_of,
            "known_at": known_at,
            "after": after,
            "limit": limit,
            "min_position": min_position,
        }
        return self._call("GET", "/companies", CompanyPage, params=params)

    def portfolio(
        self,
        investor_id: str,
        as_of: dt.date | str | None = None,
        known_at: dt.datetime | str | None = None,
        min_position: int | None = None,
    ) -> Portfolio:
        """Return the companies an investor took part in, with the rounds.

        Portfolios come from read models that trail the log by a moment: pass the position of
        a receipt as ``min_position`` to read your own writes.
        """
        params = {"as_of": as_of, "known_at": known_at, "min_position": min_position}
        path = f"/investors/{_segment(investor_id)}/portfolio"
        return self._call("GET", path, Portfolio, params=params)

    def export_rules(
        self,
        as_of: dt.date | str | None = None,
        known_at: dt.datetime | str | None = None,
        target_jurisdiction: str | None = None,
        min_position: int | None = None,
    ) -> ExportRules:
        """Return the export rules in force."""
        params = {
            "as_of": as_of,
            "known_at": known_at,
            "target_jurisdiction": target_jurisdiction,
            "min_position": min_position,
        }
        return self._call("GET", "/export-rules", ExportRules, params=params)

    def disputes(
        self,
        company_id: str,
        as_of: dt.date | str | None = None,
        known_at: dt.datetime | str | None = None,
    ) -> CompanyDisputes:
        """Return the company's facts on which sources disagree, each field with both sides."""
        params = {"as_of": as_of, "known_at": known_at}
        path = f"/companies/{_segment(company_id)}/disputes"
        return self._call("GET", path, CompanyDisputes, params=params)

    def sources(
        self, name: str | None = None, after: str | None = None, limit: int = 100
    ) -> SourcePage:
        """Return sources in name order (those whose name contains ``name``), with report counts."""
        params = {"name": name, "after": after, "limit": limit}
        return self._call("GET", "/sources", SourcePage, params=params)


# Reads wait for the next line for longer than the service's keep-alive comments apart (15 s).
_STREAM_TIMEOUT = httpx.Timeout(10.0, read=60.0)
_EVENT = msgspec.json.Decoder(Event)


class _RetryLaterError(Exception):
    """The service asked to be called again later (503, 429)."""


class _Follower:
    """The state of one subscription across reconnections: what was yielded, what comes next."""

    def __init__(self, after: int, types: Sequence[str] | None, stream: str | None) -> None:
        self.last = after
        self.types = list(types) if types else None
        self.stream = stream
        self.failures = 0
        self.retry_after: float | None = None
        self._id: str | None = None
        self._data: list[str] = []

    def request(self) -> dict[str, Any]:
        """The query and headers that resume after the last event yielded."""
        params = {"after": self.last, "type": self.types, "stream": self.stream}
        return {
            "params": {k: v for k, v in params.items() if v is not None},
            "headers": {"Last-Event-ID": str(self.last), "Accept": "text/event-stream"},
        }

    def check(self, status: int, headers: httpx.Headers, body: bytes) -> None:
        """Raise on a refusal: to retry later (503, 429), or for good (any other 4xx/5xx)."""
        self._id, self._data = None, []
        if status in (429, 503):
            retry = headers.get("Retry-After", "")
            self.retry_after = float(retry) if retry.isdigit() else None
            raise _RetryLaterError
        if status >= 400:
            try:
                problem = msgspec.json.decode(body)
            except msgspec.DecodeError:
                problem = {"title": str(status), "detail": body[:500].decode(errors="replace")}
            raise LedgerClientError(status, problem)

    def feed(self, line: str) -> Event | None:
        """Take one line of the stream; return an event when one is complete and new."""
        if line.startswith("data:"):
            self._data.append(line[5:].removeprefix(" "))
        elif line.startswith("id:"):
            self._id = line[3:].strip()
        elif not line and self._data:
            event = _EVENT.decode("\n".join(self._data))
            self._id, self._data = None, []
            self.failures = 0
            if event.position <= self.last:  # already yielded before a reconnection
                return None
            self.last = event.position
            return event
        return None

    def pause(self, max_wait: float) -> float:
        """How long to wait before reconnecting: the service's word, else a growing backoff."""
        self.failures += 1
        if self.retry_after is not None:
            wait, self.retry_after = self.retry_after, None
            return min(wait, max_wait)
        return min(0.05 * float(2 ** min(self.failures, 10)), max_wait)


def _segment(value: str) -> str:
    """Quote a path segment, so that an id can never reach another path."""
    return urllib.parse.quote(value, safe="")


def _param(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def verify_webhook(
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> WebhookMessage:
    """Check a webhook's signature (any of the ones given) and age; return its message.

    ``headers`` are the request's headers (any case). Raises WebhookVerificationError when the
    signature does not match the secret, or the timestamp is further than the tolerance from
    now, which stops an old message from being replayed.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        message_id = lower["webhook-id"]
        stamp = lower["webhook-timestamp"]
        signatures = lower["webhook-signature"].split()
    except KeyError:
        raise WebhookVerificationError("missing webhook headers") from None
    if not _TIMESTAMP.fullmatch(stamp):
        raise WebhookVerificationError("the webhook-timestamp is not a Unix time in seconds")
    timestamp = int(stamp)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise WebhookVerificationError("the message's timestamp is too old or too new")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    for candidate in signatures:
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            return msgspec.json.decode(body, type=WebhookMessage)
    raise WebhookVerificationError("no signature matches the secret")
