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
import logging
import time
from collections.abc import Awaitable, Callable
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


STALE_ANSWERED = 2  # a checkpoint read up to this many ttls ago is answered while read again


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
        self._closed = False

    async def signed(self, min_position: int | None = None) -> SignedCheckpoint:
        """Return the latest checkpoint; 503 when there is none (covering ``min_position``)."""
        latest = await self.latest()
        if min_position is not None and not _covers(latest, min_position):
            latest = await self.read_now()  # a request that waits for a position looks now
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

        A read ``ttl`` old or less is answered as it is. An older one, up to
        ``STALE_ANSWERED`` ttls, is answered at once and read again in the background, so that
        under load no request waits for the read (every request arriving during it did, when
        it was made in the request's path). Older still, or before any checkpoint is known,
        the request reads.
        """
        if self._value.checkpoint is None:
            return await self.read_now()  # one may have been signed since
        age = time.monotonic() - self._read_at
        if age >= self.ttl:
            if age >= STALE_ANSWERED * self.ttl or self._closed:
                await self._refresh()
            elif self._refreshing is None or self._refreshing.done():
                self._refreshing = asyncio.create_task(
                    self._quietly(self._refresh, "reading the latest checkpoint"),
                    name="ledger-checkpoint",
                )
        return self._value

    async def read_now(self) -> Latest:
        """Read the latest checkpoint now (once for every caller waiting meanwhile)."""
        asked = time.monotonic()
        async with self._lock:
            if self._read_at < asked:
                await self._read()
        return self._value

    async def _refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._read_at >= self.ttl:
                await self._read()

    async def _read(self) -> None:
        async with self.pool.acquire() as conn:
            checkpoint = await tree.latest_checkpoint(conn)
            fork = await fork_of(conn, checkpoint) if checkpoint is not None else None
        self._value = Latest(checkpoint, fork)
        self._read_at = time.monotonic()
        if checkpoint is not None and fork is None:
            self._remember(checkpoint)

    def _remember(self, checkpoint: SignedCheckpoint) -> None:
        """Start copying the tree of the checkpoint into memory, unless a copy is under way."""
        memory = self.memory
        if memory is None or self._closed or checkpoint.tree_size <= memory.size:
            return
        if self._catching_up is None or self._catching_up.done():
            self._catching_up = asyncio.create_task(
                self._quietly(
                    lambda: self._catch_up(memory, checkpoint), "copying the tree into memory"
                ),
                name="ledger-tree-memory",
            )

    async def _catch_up(self, memory: TreeMemory, checkpoint: SignedCheckpoint) -> None:
        """Copy the checkpoint's tree; what memory holds must have the checkpoint's root.

        It would not if the stored tree was rewritten after memory copied part of it and the
        rewritten tree was signed since: then memory is emptied and copied again.
        """
        async with self.pool.acquire() as conn:
            await memory.catch_up(conn, checkpoint.tree_size)
            if await tree.root_at(conn, checkpoint.tree_size, memory) != checkpoint.root:
                log.error(
                    "the tree held in memory does not have the root of the checkpoint of %d "
                    "events: copying it again",
                    checkpoint.tree_size,
                )
                memory.clear()

    @staticmethod
    async def _quietly(work: Callable[[], Awaitable[None]], what: str) -> None:
        """Run background work whose failure only means it is done again later."""
        try:
            await work()
        except (
            OSError,
            LookupError,
            TimeoutError,
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
        ) as exc:
            log.warning("%s failed: %s", what, exc)
        except Exception:
            log.exception("%s failed", what)

    async def close(self) -> None:
        """Stop a read of the checkpoint and a copy of the tree under way; start no other."""
        self._closed = True
        tasks = [t for t in (self._refreshing, self._catching_up) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _covers(latest: Latest, position: int) -> bool:
    return latest.checkpoint is not None and latest.checkpoint.tree_size >= position
