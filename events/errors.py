"""Errors raised by the log, each carrying what a client needs to fix its request."""

from __future__ import annotations

from typing import Any

from msgspec import Struct


class FieldError(Struct, frozen=True):
    """One offending field: its path in the request body and what is wrong with it."""

    field: str
    message: str


class LedgerError(Exception):
    """Base of the errors a client can cause; ``status`` is the HTTP status it maps to."""

    status = 400
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        errors: list[FieldError] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.extra = extra or {}

    def prefixed(self, prefix: str) -> LedgerError:
        """Return a copy whose field paths start with ``prefix`` (an item of a batch)."""
        errors = [FieldError(_join(prefix, e.field), e.message) for e in self.errors]
        return type(self)(f"{prefix}: {self.detail}", errors, self.extra)


class MalformedRequestError(LedgerError):
    """The body is not JSON at all."""

    title = "Malformed JSON"


class InvalidRequestError(LedgerError):
    """The body is JSON but not what the endpoint takes."""

    title = "Invalid request"


class InvalidEventError(InvalidRequestError):
    """The body is JSON but not a valid envelope."""

    title = "Invalid event"


class InvalidQueryError(LedgerError):
    """A query's parameter is not what it takes (a date, an instant)."""

    title = "Bad Request"


class ConflictError(LedgerError):
    """The append conflicts with what the stream already holds."""

    status = 409
    title = "Conflict"


class UnprocessableEventError(LedgerError):
    """The event is well formed but refers to something it cannot."""

    status = 422
    title = "Unprocessable event"


class OverloadedError(LedgerError):
    """The append queue is full; the client should retry later."""

    status = 503
    title = "Service overloaded"


class StoreUnavailableError(LedgerError):
    """The database could not be reached or did not confirm; the detail says what is known."""

    status = 503
    title = "Database unavailable"


def _join(prefix: str, field: str) -> str:
    if not field:
        return prefix
    return f"{prefix}{field}" if field.startswith("[") else f"{prefix}.{field}"
