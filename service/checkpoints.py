"""The latest signed checkpoint as requests see it: read at most once per short interval.

Signing is the notary's (service/notary.py), never a request's: a request reads the checkpoint
the notary stored, through this cache. Each refresh also checks that the stored tree still has
the checkpoint's root at its size, so that every process (not only the one that signs) notices
a rewritten history and says so. A refresh that finds a larger checkpoint also starts, in the
background, copying the tree's new nodes into memory (events/tree_memory.py), where proofs
find them without reading the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

import asyncpg

from events import tree
from events.tree import SignedCheckpoint
from events.tree_check import Fork, fork_of
from events.tree_memory import TreeMemory
from service.http.problems import problem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Latest:
    """The latest signed checkpoint (None: none yet), and the fork if the log no longer fits it."""

    checkpoint: SignedCheckpoint | None
    fork: Fork | None


class CheckpointCache:
    """The latest checkpoint, read again once ``ttl`` seconds have passed."""

    def __init__(
        self, pool: asyncpg.Pool, ttl: float, vkey: str | None, memory: TreeMemory | None = None
    ) -> None:
        self.pool = pool
        self.ttl = ttl
        self.vkey = vkey  # the key this service signs with (None: it has none)
        self.memory = memory  # the tree's nodes held in memory (None: proofs read them all)
        self._value = Latest(None, None)
        self._read_at = -float("inf")
        self._lock = asyncio.Lock()
        self._refreshing: asyncio.Task[None] | None = None
        self._catching_up: asyncio.Task[None] | None = None

    async def signed(self, min_position: int | None = None) -> SignedCheckpoint:
        """Return the latest checkpoint; 503 when there is none (covering ``min_position``)."""
        latest = await self.latest()
        if min_position is not None and not _covers(latest, min_position):
            await self._refresh()  # a request that waits for a position looks now
            latest = self._value
        if latest.fork is not None:
            raise problem(
                503,
                f"the ledger has stopped signing: {latest.fork.describe()}",
                extra={"signing": "stopped", "fork": latest.fork.describe()},
            )
        signed = latest.checkpoint
        if min_position is not None and not _covers(latest, min_position):
            raise problem(
                503,
                f"the ledger has not reached position {min_position} in a signed checkpoint "
                "yet; retry shortly",
            )
        if signed is None:
            raise problem(503, "the ledger has signed no checkpoint yet; retry shortly")
        return signed

    async def latest(self) -> Latest:
        """Return the latest checkpoint, from memory if read lately.

        One read lately is ``ttl`` old at most; an older one is answered at once and read again
        in the background, so that no request waits for the read (every request that arrived
        during it did, when it was made in the request's path). Until a checkpoint is known,
        each request reads.
        """
        if time.monotonic() - self._read_at >= self.ttl:
            if self._value.checkpoint is None:
                await self._refresh()
            elif self._refreshing is None or self._refreshing.done():
                self._refreshing = asyncio.create_task(
                    self._refresh_quietly(), name="ledger-checkpoint"
                )
        return self._value

    async def _refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._read_at < self.ttl:
                return
            async with self.pool.acquire() as conn:
                checkpoint = await tree.latest_checkpoint(conn)
                fork = await fork_of(conn, checkpoint) if checkpoint is not None else None
            self._value = Latest(checkpoint, fork)
            self._read_at = time.monotonic()
            if checkpoint is not None and fork is None:
                self._remember(checkpoint.tree_size)

    async def _refresh_quietly(self) -> None:
        try:
            await self._refresh()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            log.warning("reading the latest checkpoint failed: %s", exc)

    def _remember(self, size: int) -> None:
        """Start copying the tree of ``size`` leaves into memory, unless a copy is under way."""
        if self.memory is None or size <= self.memory.size:
            return
        if self._catching_up is None or self._catching_up.done():
            self._catching_up = asyncio.create_task(
                self._catch_up(self.memory, size), name="ledger-tree-memory"
            )

    async def _catch_up(self, memory: TreeMemory, size: int) -> None:
        try:
            async with self.pool.acquire() as conn:
                await memory.catch_up(conn, size)
        except (LookupError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("copying the tree into memory stopped: %s", exc)

    async def close(self) -> None:
        """Stop a read of the checkpoint and a copy of the tree under way."""
        for task in (self._refreshing, self._catching_up):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


def _covers(latest: Latest, position: int) -> bool:
    return latest.checkpoint is not None and latest.checkpoint.tree_size >= position
