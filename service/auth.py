"""Bearer-token access: a guard that checks the scope each route declares."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from service.keys import KeyCache
from service.problems import problem

SCOPE_OPT = "scope"


async def require_scope(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Refuse a request without a valid token (401) or without the route's scope (403)."""
    scope = handler.opt.get(SCOPE_OPT)
    if scope is None:
        return
    header = connection.headers.get("authorization", "")
    kind, _, token = header.partition(" ")
    if kind.lower() != "bearer" or not token:
        raise _unauthorized("send Authorization: Bearer <token>")
    cache: KeyCache = connection.app.state.api_keys
    scopes = await cache.scopes_of(token.strip())
    if scopes is None:
        raise _unauthorized("the token is not valid or has been revoked")
    if scope not in scopes and "admin" not in scopes:
        raise problem(403, f"the token lacks the {scope!r} scope")


def _unauthorized(detail: str) -> Exception:
    return problem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="ledger"'})
