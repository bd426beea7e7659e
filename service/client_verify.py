"""Verified answers in the client: asked with their proof, checked against a pinned key.

The answer is checked as the service sent it (service/verified.py: the signature, each event's
inclusion, and the re-fold of those events with the ledger's own pure folds), then decoded
into the client's types like any other answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

from events.notes import NoteError, Verifier
from service import client_types as types
from service import verified
from service.client_requests import LedgerError, Request
from service.schemas import ProvenCompany, ProvenExportRules, ProvenPortfolio, ProvenValuations

T = TypeVar("T")


class VerificationError(LedgerError, verified.VerificationError):
    """An answer that does not check out against the signed log: do not trust it."""


# For each answer the client can have verified: its proven form and the check of it.
_CHECKS: dict[type[Any], tuple[type[Any], Callable[..., None]]] = {
    types.Company: (ProvenCompany, verified.check_company),
    types.Valuations: (ProvenValuations, verified.check_valuations),
    types.Portfolio: (ProvenPortfolio, verified.check_portfolio),
    types.ExportRules: (ProvenExportRules, verified.check_rules),
}


def verifier(key: str | None) -> Verifier:
    """The pinned verifier key, or a LedgerError saying it is needed."""
    if key is None:
        raise LedgerError("verified=True needs the ledger's verifier key: LedgerClient(key=...)")
    try:
        return Verifier.parse(key)
    except NoteError as error:
        raise LedgerError(f"key: {error}") from None


def with_proof(request: Request[T]) -> Request[msgspec.Raw]:
    """The same request asking for the proof too, its answer kept as sent."""
    params = {**request.params, "proof": "true"}
    return Request(request.method, request.path, msgspec.Raw, params, request.body)


def checked(request: Request[T], answer: msgspec.Raw, key: Verifier, subject: str | None) -> T:
    """Check a proven answer to ``request`` about ``subject``; return it as the client's type."""
    proven, check = _CHECKS[request.into]
    try:
        check(msgspec.json.decode(answer, type=proven), key, subject)
    except verified.VerificationError as error:
        raise VerificationError(str(error)) from None
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise VerificationError(f"the proven answer cannot be read: {error}") from None
    return msgspec.json.decode(answer, type=request.into)
