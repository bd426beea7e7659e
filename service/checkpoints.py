"""The latest signed checkpoint as requests see it: read at most once per short interval.

Signing is the notary's (service/notary.py), never a request's: a request reads the checkpoint
the notary stored, through this cache. Each refresh also checks that the stored tree still has
the checkpoint's root at its size, so that every process (not only the one that signs) notices
a rewritten history and says so.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import asyncpg

from events import tree
from events.tree import SignedCheckpoint
from events.tree_check import Fork, fork_of
from service.http.problems import problem


@dataclass(frozen=True)
class Latest:
    """The latest signed checkpoint (None: none yet), and the fork if the log no longer fits it."""

    checkpoint: SignedCheckpoint | None
    fork: Fork | None


class CheckpointCache:
    """The latest checkpoint, read again once ``ttl`` seconds have passed."""

    def __init__(self, pool: asyncpg.Pool, ttl: float, vkey: str | None) -> None:
        self.pool = pool
        self.ttl = ttl
        self.vkey = vkey  # the key this service signs with (None: it has none)
        self._value = Latest(None, None)
        self._read_at = -float("inf")
        self._lock = asyncio.Lock()

    async def signed(self, min_position: int | None = None) -> SignedCheckpoint:
        """Return the latest checkpoint; 503 when there is none (covering ``min_position``)."""
        latest = await self.latest()
        if latest.fork is not None:
            raise problem(
                503,
                f"the ledger has stopped signing: {latest.fork.describe()}",
                extra={"signing": "stopped", "fork": latest.fork.describe()},
            )
        signed = latest.checkpoint
        if min_position is not None and (signed is None or signed.tree_size < min_position):
            raise problem(
                503,
                f"the ledger has not reached position {min_position} in a signed checkpoint "
                "yet; retry shortly",
            )
        if signed is None:
            raise problem(503, "the ledger has signed no checkpoint yet; retry shortly")
        return signed

    async def latest(self) -> Latest:
        """Return the latest checkpoint, from memory if read lately."""
        if time.monotonic() - self._read_at < self.ttl:
            return self._value
        async with self._lock:
            if time.monotonic() - self._read_at >= self.ttl:
                async with self.pool.acquire() as conn:
                    checkpoint = await tree.latest_checkpoint(conn)
                    fork = await fork_of(conn, checkpoint) if checkpoint is not None else None
                self._value = Latest(checkpoint, fork)
                self._read_at = time.monotonic()
        return self._value
