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

import base64
import datetime as dt
import hashlib
import hmac
import re
import time
import urllib.parse
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

import httpx
import msgspec

from events.notes import Verifier
from events.records import Receipt, RecordedEvent
from service import verified as proofs
from service.schemas import (
    Company,
    CompanyPage,
    DatedValuation,
    ExportRules,
    Portfolio,
    ProvenCompany,
    ProvenExportRules,
    ProvenPortfolio,
    ProvenValuations,
    Valuations,
)

T = TypeVar("T")
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
        key: str | None = None,
    ) -> None:
        """``key``: the ledger's verifier key, pinned, for answers asked ``verified=True``."""
        self._key = key
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

    def _verifier(self) -> Verifier:
        if self._key is None:
            raise ValueError("verified=True needs the ledger's verifier key: LedgerClient(key=...)")
        return Verifier.parse(self._key)

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
        *,
        verified: bool = False,
    ) -> Company:
        """Return a company's state as of a date, as the ledger knew it at an instant.

        ``verified``: check the answer against the signed log (raises VerificationError).
        """
        params = {"as_of": as_of, "known_at": known_at, "min_position": min_position}
        path = f"/companies/{_segment(company_id)}"
        if not verified:
            return self._call("GET", path, Company, params=params)
        answer = self._call("GET", path, ProvenCompany, params={**params, "proof": "true"})
        proofs.check_company(answer, self._verifier(), company_id)
        return answer

    def valuations(
        self,
        company_id: str,
        as_of: dt.date | str | None = None,
        known_at: dt.datetime | str | None = None,
        min_position: int | None = None,
        *,
        verified: bool = False,
    ) -> list[DatedValuation]:
        """Return every valuation of a company, in effective-date order (``verified``: checked)."""
        params = {"as_of": as_of, "known_at": known_at, "min_position": min_position}
        path = f"/companies/{_segment(company_id)}/valuations"
        if not verified:
            return self._call("GET", path, Valuations, params=params).valuations
        answer = self._call("GET", path, ProvenValuations, params={**params, "proof": "true"})
        proofs.check_valuations(answer, self._verifier(), company_id)
        return answer.valuations

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
        *,
        verified: bool = False,
    ) -> Portfolio:
        """Return the companies an investor took part in, with the rounds.

        Portfolios come from read models that trail the log by a moment: pass the position of
        a receipt as ``min_position`` to read your own writes. ``verified``: checked.
        """
        params = {"as_of": as_of, "known_at": known_at, "min_position": min_position}
        path = f"/investors/{_segment(investor_id)}/portfolio"
        if not verified:
            return self._call("GET", path, Portfolio, params=params)
        answer = self._call("GET", path, ProvenPortfolio, params={**params, "proof": "true"})
        proofs.check_portfolio(answer, self._verifier(), investor_id)
        return answer

    def export_rules(
        self,
        as_of: dt.date | str | None = None,
        known_at: dt.datetime | str | None = None,
        target_jurisdiction: str | None = None,
        min_position: int | None = None,
        *,
        verified: bool = False,
    ) -> ExportRules:
        """Return the export rules in force (``verified``: checked against the signed log)."""
        params = {
            "as_of": as_of,
            "known_at": known_at,
            "target_jurisdiction": target_jurisdiction,
            "min_position": min_position,
        }
        if not verified:
            return self._call("GET", "/export-rules", ExportRules, params=params)
        params["proof"] = "true"
        answer = self._call("GET", "/export-rules", ProvenExportRules, params=params)
        proofs.check_rules(answer, self._verifier(), target_jurisdiction)
        return answer


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
