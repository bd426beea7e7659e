"""Integrity: the head digest and a full verification of the hash chain."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from msgspec import Struct

from events import log
from events.integrity import VerifyReport, verify_store
from service.auth import BEARER, SCOPE_OPT


class Digest(Struct, frozen=True):
    """The head of the log: its position and hash, which commit to everything before it."""

    position: int
    hash: str
    recorded_at: str | None


class LedgerController(Controller):
    """``/ledger``."""

    security = BEARER

    path = "/ledger"
    opt = {SCOPE_OPT: "admin"}  # noqa: RUF012 (Litestar's own attribute)

    @get("/digest")
    async def digest(self, request: Request[Any, Any, Any]) -> Digest:
        """Return the head's position and hash."""
        from events.chain import format_instant

        async with request.app.state.pool.acquire() as conn:
            position, digest, recorded_at = await log.head(conn)
        return Digest(position, digest.hex(), format_instant(recorded_at) if position else None)

    @get("/verify")
    async def verify(self, request: Request[Any, Any, Any]) -> VerifyReport:
        """Recompute the whole chain and report the first position that no longer matches."""
        # One verification at a time: each hashes the whole log on the event loop.
        async with request.app.state.verify_lock, request.app.state.pool.acquire() as conn:
            return await verify_store(conn)
