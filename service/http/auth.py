"""Bearer-token access: each route declares the scope it needs; a middleware checks it.

A middleware rather than a guard: it runs once per request before the body or the parameters
are read, and costs one dictionary lookup for a token seen before.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    Scope,
    Send,
)

from service.http.limits import RateLimiter, too_many
from service.http.problems import problem
from service.keys import PREFIX, KeyCache

SCOPE_OPT = "scope"


class AnyOf(frozenset[str]):
    """A route's need met by any one of these scopes (a plain tuple needs each of its scopes)."""


Needed = str | tuple[str, ...] | AnyOf


# The rules routes share (``opt=READS_LOG``); ``admin`` meets every rule.
# The log itself, event by event: readers, and auditors who check it.
READS_LOG = {SCOPE_OPT: AnyOf({"events:read", "audit"})}
# Integrity: the digest, verification, checkpoints and proofs. Auditors need nothing more.
AUDITS = {SCOPE_OPT: AnyOf({"audit"})}

# The OpenAPI security requirement of every operation that needs a token.
BEARER: tuple[dict[str, list[str]], ...] = ({"bearer": []},)


class ScopeCheck(ASGIMiddleware):
    """Refuse a request without a valid token (401) or without the route's scope (403)."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope.get("method") == "OPTIONS":  # says what the path allows; needs no token
            await _options(scope, send)
            return
        required = scope["route_handler"].opt.get(SCOPE_OPT)
        if required is not None:
            await _authorize(scope, required)
        await next_app(scope, receive, send)


async def _authorize(scope: Scope, required: Needed) -> None:
    header = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
    kind, _, token = header.decode("latin-1").partition(" ")
    if kind.lower() != "bearer" or not token.strip():
        raise _unauthorized("send Authorization: Bearer <token>")
    cache: KeyCache = scope["litestar_app"].state.api_keys
    scopes = await cache.scopes_of(token.strip())
    if scopes is None:
        raise _unauthorized("the token is not valid or has been revoked")
    lacking = _lacking(required, scopes)
    if lacking is not None and "admin" not in scopes:
        raise problem(403, f"the token lacks {lacking}")
    limiter: RateLimiter = scope["litestar_app"].state.rate_limiter
    wait = limiter.take(token.strip()[len(PREFIX) :].partition("_")[0])  # per key id
    if wait is not None:
        raise too_many(wait)


def _lacking(required: Needed, held: Collection[str]) -> str | None:
    """Describe what the token lacks of what the route needs, or None if it has it."""
    if isinstance(required, AnyOf):
        if required.isdisjoint(held):
            return "the " + " or ".join(repr(s) for s in sorted(required)) + " scope"
        return None
    needed = (required,) if isinstance(required, str) else required
    missing = [s for s in needed if s not in held]
    return f"the {missing[0]!r} scope" if missing else None


async def _options(scope: Scope, send: Send) -> None:
    """Answer OPTIONS with every method of the path (Litestar's own lists only some)."""
    allowed: dict[str, str] = scope["litestar_app"].state.allowed_methods
    paths = scope["route_handler"].paths
    allow = next((allowed[p] for p in paths if p in allowed), "OPTIONS")
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": 204,
        "headers": [(b"allow", allow.encode())],
    }
    body: HTTPResponseBodyEvent = {"type": "http.response.body", "body": b"", "more_body": False}
    await send(start)
    await send(body)


def allowed_methods(routes: list[Any]) -> dict[str, str]:
    """Map each path to the methods its handlers answer, for the Allow header."""
    return {
        route.path: ", ".join(sorted(route.methods))
        for route in routes
        if hasattr(route, "methods")
    }


def _unauthorized(detail: str) -> Exception:
    return problem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="ledger"'})
