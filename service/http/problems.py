"""One place that maps every error to an RFC 9457 problem+json response."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import asyncpg
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.plugins.problem_details import (
    ProblemDetailsConfig,
    ProblemDetailsException,
    ProblemDetailsPlugin,
)
from msgspec import Struct

from events.errors import LedgerError

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "1"
PROBLEM_JSON = "application/problem+json"


class FieldProblem(Struct, frozen=True):
    """One offending field of a request."""

    field: str
    message: str


class Problem(Struct, frozen=True, kw_only=True):
    """An RFC 9457 problem: every error the service answers is one.

    Some carry more members: ``current_version`` (409 on ``expected_version``), ``event_ids``
    (503 whose outcome is unknown: retry them), ``line`` (imports).
    """

    status: int
    title: str
    detail: str
    errors: list[FieldProblem] | None = None


_WHEN = {
    400: "the request is malformed or invalid; `errors` names each field",
    401: "no valid token (missing, unknown or revoked)",
    403: "the token lacks the operation's scope",
    404: "no such resource, or not known at that point in time",
    408: "the body did not arrive within LEDGER_BODY_TIMEOUT; the connection is closed",
    409: "a conflict with what is recorded (idempotency, expected_version, a pending delivery)",
    413: "the body is larger than LEDGER_MAX_BODY_BYTES",
    422: "well formed but not applicable (an unknown correction target, a refused URL, "
    "a known_at before min_position was recorded)",
    429: "too many requests for this token; retry after Retry-After seconds",
    503: "the database is unavailable, the service is overloaded, or min_position is not "
    "reached yet; retry after Retry-After seconds",
}

# Every operation may answer these; documented once, for all of them.
PROBLEM_RESPONSES = {
    status: ResponseSpec(
        data_container=Problem,
        description=description,
        media_type=PROBLEM_JSON,
        generate_examples=False,
    )
    for status, description in _WHEN.items()
}


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    errors: list[dict[str, str]] | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> ProblemDetailsException:
    """Build a problem with the standard title for its status unless one is given."""
    body: dict[str, Any] = dict(extra or {})
    if errors:
        body["errors"] = errors
    if status == 503:
        headers = {"Retry-After": RETRY_AFTER_SECONDS, **(headers or {})}
    return ProblemDetailsException(
        status_code=status,
        title=title or HTTPStatus(status).phrase,
        detail=detail,
        extra=body or None,
        headers=headers,
    )


def from_ledger_error(exc: LedgerError) -> ProblemDetailsException:
    """Map an error of the log to its problem."""
    errors = [{"field": e.field, "message": e.message} for e in exc.errors]
    return problem(exc.status, exc.detail, title=exc.title, errors=errors, extra=exc.extra)


def from_http_exception(exc: HTTPException) -> ProblemDetailsException:
    """Map Litestar's own errors (routing, parameters, body size) to problems."""
    if isinstance(exc, ProblemDetailsException):
        return exc
    errors: list[dict[str, str]] = []
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        for item in exc.extra:
            if isinstance(item, dict):
                errors.append(
                    {"field": str(item.get("key", "")), "message": str(item.get("message"))}
                )
    detail = exc.detail
    if exc.status_code == 413:
        detail = "the request body is larger than this service accepts (LEDGER_MAX_BODY_BYTES)"
        errors = [{"field": "body", "message": "too large"}]
    elif errors:
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem(exc.status_code, detail, errors=errors, headers=exc.headers)


def from_database_error(exc: Exception) -> ProblemDetailsException:
    """A database that cannot be reached is the service's trouble, reported as 503."""
    log.warning("database unavailable: %s", exc)
    return problem(503, "the database is unavailable; nothing was changed, retry shortly")


def unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Log an unexpected failure and answer with a problem that reveals nothing internal."""
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, "an unexpected error occurred; it has been logged").to_response(request)


def problem_details_plugin() -> ProblemDetailsPlugin:
    """Return the plugin that turns every handled error into problem+json."""
    return ProblemDetailsPlugin(
        ProblemDetailsConfig(
            enable_for_all_http_exceptions=True,
            exception_to_problem_detail_map={
                HTTPException: from_http_exception,
                LedgerError: from_ledger_error,
                OSError: from_database_error,
                asyncpg.exceptions.CannotConnectNowError: from_database_error,
                asyncpg.exceptions.ConnectionDoesNotExistError: from_database_error,
                asyncpg.exceptions.InterfaceError: from_database_error,
                # a connection cut by the server (failover, restart, administrator)
                asyncpg.exceptions.InternalClientError: from_database_error,
                asyncpg.exceptions.PostgresConnectionError: from_database_error,
                asyncpg.exceptions.OperatorInterventionError: from_database_error,
                # transient conflicts between transactions: the request changed nothing
                asyncpg.exceptions.DeadlockDetectedError: from_database_error,
                asyncpg.exceptions.SerializationError: from_database_error,
                TimeoutError: from_database_error,
            },
        )
    )
