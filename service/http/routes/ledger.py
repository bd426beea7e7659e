"""Integrity: the head digest and a full verification of the hash chain."""

from __future__ import annotations

from litestar import Controller, get

from events import log
from events.integrity import VerifyReport, verify_store
from service.http.auth import AUDITS, BEARER
from service.http.dependencies import Pool, VerifyLock
from service.schemas import Digest


class LedgerController(Controller):
    """``/ledger``."""

    security = BEARER

    path = "/ledger"
    opt = AUDITS

    @get("/digest")
    async def digest(self, pool: Pool) -> Digest:
        """Return the head's position and hash."""
        from events.chain import format_instant

        async with pool.acquire() as conn:
            position, digest, recorded_at = await log.head(conn)
        return Digest(position, digest.hex(), format_instant(recorded_at) if position else None)

    @get("/verify")
    async def verify(self, pool: Pool, verify_lock: VerifyLock) -> VerifyReport:
        """Recompute the whole chain and report the first position that no longer matches."""
        # One verification at a time: each hashes the whole log on the event loop.
        async with verify_lock, pool.acquire() as conn:
            return await verify_store(conn)
