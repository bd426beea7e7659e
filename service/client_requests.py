"""The client's requests, answers, errors and retries, shared by its sync and async forms.

Nothing here does I/O: a method of either client builds a :class:`Request`, sends it, asks
:class:`RetryPolicy` whether and when to send it again, and decodes the answer with
:func:`decode`. So the two clients differ only in how they send and how they wait.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import urllib.parse
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx
import msgspec

from service.client_types import (
    Company,
    CompanyDisputeList,
    CompanyPage,
    Digest,
    Event,
    EventPage,
    ExportRules,
    Portfolio,
    Receipt,
    Receipts,
    SourcePage,
    Valuations,
)

T = TypeVar("T")
Envelope = Mapping[str, Any] | msgspec.Struct
Day = dt.date | str | None
Instant = dt.datetime | str | None


class LedgerError(Exception):
    """Anything the client could not get done; catch this to catch every error it raises."""


class LedgerUnavailableError(LedgerError):
    """The service could not be reached, or the connection failed or timed out.

    The request may or may not have been handled: an append is safe to send again, because
    the client gives every envelope an ``event_id`` (the service answers a repeat with the
    original receipt).
    """


class FieldProblem(msgspec.Struct, frozen=True):
    """One offending field of a request, written as a path into it (``events[3].data``)."""

    field: str
    message: str


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """The problem+json the service answers with (RFC 9457)."""

    status: int | None = None
    title: str = ""
    detail: str = ""
    errors: list[FieldProblem] | None = None


class ProblemError(LedgerError):
    """The service refused the request: its status, title, detail and offending fields."""

    def __init__(
        self, status: int, problem: Problem, body: dict[str, Any], retry_after: float | None
    ) -> None:
        self.status = status
        self.title = problem.title
        self.detail = problem.detail
        self.errors: list[FieldProblem] = list(problem.errors or [])
        self.problem = body  # every member, those beyond the standard ones too
        self.retry_after = retry_after  # seconds, when the service said when to come back
        super().__init__(f"{status} {self.title}: {self.detail}")


@dataclass(frozen=True)
class Request(Generic[T]):
    """One call of the API: what to send, and the type its answer decodes into."""

    method: str
    path: str
    into: type[T]
    params: dict[str, Any] = field(default_factory=dict)
    body: bytes | None = None

    @property
    def headers(self) -> dict[str, str]:
        """The headers of this request beyond the client's own."""
        return {"content-type": "application/json"} if self.body is not None else {}


def request(
    method: str,
    path: str,
    into: type[T],
    params: Mapping[str, Any] | None = None,
    body: Any = None,
) -> Request[T]:
    """Build a request: parameters that are None are left out, dates and instants in ISO 8601."""
    query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
    content = msgspec.json.encode(body) if body is not None else None
    return Request(method, path, into, query, content)


def decode(request: Request[T], answer: httpx.Response) -> T:
    """Decode an answer into the request's type, or raise the problem the service answered."""
    if answer.status_code >= 400:
        raise problem_error(answer)
    try:
        return msgspec.json.decode(answer.content, type=request.into)
    except msgspec.DecodeError as error:
        raise LedgerError(f"{request.method} {request.path}: unexpected answer: {error}") from None


def problem_error(answer: httpx.Response) -> ProblemError:
    """The error for a 4xx or 5xx answer, whatever its body."""
    try:
        body = msgspec.json.decode(answer.content)
        problem = msgspec.convert(body, Problem)
    except (msgspec.DecodeError, msgspec.ValidationError):
        body = {"title": answer.reason_phrase, "detail": answer.text[:500]}
        problem = Problem(title=answer.reason_phrase, detail=answer.text[:500])
    return ProblemError(answer.status_code, problem, body, retry_after(answer))


def unavailable(request: Request[Any], error: httpx.TransportError) -> LedgerUnavailableError:
    """Wrap a network error in the client's own, naming what was being asked."""
    what = type(error).__name__
    return LedgerUnavailableError(f"{request.method} {request.path}: {what}: {error}")


def retry_after(answer: httpx.Response) -> float | None:
    """The seconds ``Retry-After`` asks for (a number or an HTTP date), or None."""
    value = answer.headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """When to send a request again: after a 429 or 503, as ``Retry-After`` says, bounded.

    ``attempts`` counts every send, the first included (1: never retry); ``max_wait`` bounds
    the seconds spent waiting over all of them. A wait that would go beyond it is not begun:
    the error is raised at once. Without ``Retry-After``, waits double from ``backoff``.
    """

    attempts: int = 4
    max_wait: float = 30.0
    backoff: float = 0.5
    statuses: frozenset[int] = frozenset({429, 503})

    def wait(self, answer: httpx.Response, attempt: int, waited: float) -> float | None:
        """Seconds to wait before sending again after ``attempt`` sends, or None to stop."""
        if answer.status_code not in self.statuses or attempt >= self.attempts:
            return None
        seconds = retry_after(answer)
        if seconds is None:
            seconds = self.backoff * 2 ** (attempt - 1)
        return seconds if waited + seconds <= self.max_wait else None


DEFAULT_RETRY = RetryPolicy()


def client_options(base_url: str, token: str, timeout: float) -> dict[str, Any]:
    """The options of the httpx client under either form of the ledger client."""
    return {
        "base_url": base_url,
        "headers": {"Authorization": f"Bearer {token}"},
        "timeout": timeout,
    }


def log_wait(
    log: logging.Logger, request: Request[Any], answer: httpx.Response, wait: float
) -> None:
    """Say that a request is to be sent again, and when."""
    log.info(
        "%s %s answered %d; sending it again in %.3g s",
        request.method,
        request.path,
        answer.status_code,
        wait,
    )


def segment(value: str | uuid.UUID) -> str:
    """Quote a path segment, so that an id can never reach another path."""
    return urllib.parse.quote(str(value), safe="")


def _param(value: Any) -> Any:
    if isinstance(value, dt.date):  # datetimes too
        return value.isoformat()
    return value


def _with_id(envelope: Envelope) -> dict[str, Any]:
    """The envelope with an ``event_id`` of its own, so that sending it again is idempotent."""
    plain = dict(envelope) if isinstance(envelope, Mapping) else envelope
    body: dict[str, Any] = msgspec.to_builtins(plain)
    if body.get("event_id") is None:
        body["event_id"] = str(uuid.uuid4())
    return body


# Each call of the API, built once for both clients.


def append(envelope: Envelope) -> Request[Receipt]:
    """Append one envelope."""
    return request("POST", "/events", Receipt, body=_with_id(envelope))


def append_batch(envelopes: Sequence[Envelope]) -> Request[Receipts]:
    """Append envelopes all or none."""
    return request("POST", "/events", Receipts, body={"events": [_with_id(e) for e in envelopes]})


def events(
    after: int, limit: int, types: Sequence[str] | None, stream: str | None
) -> Request[EventPage]:
    """One page of events after a position."""
    params = {"after": after, "limit": limit, "type": list(types) if types else None}
    return request("GET", "/events", EventPage, {**params, "stream": stream})


def event(event_id: uuid.UUID | str) -> Request[Event]:
    """One event by id."""
    return request("GET", f"/events/{segment(event_id)}", Event)


def digest() -> Request[Digest]:
    """The head of the hash chain."""
    return request("GET", "/ledger/digest", Digest)


def company(
    company_id: str, as_of: Day, known_at: Instant, min_position: int | None
) -> Request[Company]:
    """A company's state."""
    params = {"as_of": as_of, "known_at": known_at, "min_position": min_position}
    return request("GET", f"/companies/{segment(company_id)}", Company, params)


def valuations(
    company_id: str, as_of: Day, known_at: Instant, min_position: int | None
) -> Request[Valuations]:
    """Every valuation of a company."""
    params = {"as_of": as_of, "known_at": known_at, "min_position": min_position}
    return request("GET", f"/companies/{segment(company_id)}/valuations", Valuations, params)


def companies(
    as_of: Day, known_at: Instant, after: str | None, limit: int, min_position: int | None
) -> Request[CompanyPage]:
    """A page of companies."""
    params = {"as_of": as_of, "known_at": known_at, "after": after, "limit": limit}
    return request("GET", "/companies", CompanyPage, {**params, "min_position": min_position})


def portfolio(
    investor_id: str, as_of: Day, known_at: Instant, min_position: int | None
) -> Request[Portfolio]:
    """An investor's portfolio."""
    params = {"as_of": as_of, "known_at": known_at, "min_position": min_position}
    return request("GET", f"/investors/{segment(investor_id)}/portfolio", Portfolio, params)


def export_rules(
    as_of: Day, known_at: Instant, target_jurisdiction: str | None, min_position: int | None
) -> Request[ExportRules]:
    """The export rules in force."""
    params = {"as_of": as_of, "known_at": known_at, "min_position": min_position}
    return request(
        "GET", "/export-rules", ExportRules, {**params, "target_jurisdiction": target_jurisdiction}
    )


def disputes(
    company_id: str, as_of: Day, known_at: Instant, min_position: int | None
) -> Request[CompanyDisputeList]:
    """A company's disputed facts, each field with both sides."""
    params = {"as_of": as_of, "known_at": known_at, "min_position": min_position}
    return request("GET", f"/companies/{segment(company_id)}/disputes", CompanyDisputeList, params)


def sources(name: str | None, after: str | None, limit: int) -> Request[SourcePage]:
    """A page of sources with their numbers of reports."""
    return request("GET", "/sources", SourcePage, {"name": name, "after": after, "limit": limit})
