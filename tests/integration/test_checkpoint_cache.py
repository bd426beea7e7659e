"""The latest checkpoint as requests see it: a stale one is answered at once and read behind."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from events import tree
from events.merkle import Border
from events.tree_memory import TreeMemory
from service.checkpoints import STALE_ANSWERED, CheckpointCache
from service.database import create_pool
from tests.support import connected

LEAVES = [bytes([i]) * 32 for i in range(6)]


async def _sign(url: str, border: Border, size: int) -> None:
    """Store the nodes of the leaves up to ``size`` and a checkpoint of their tree (unsigned)."""
    async with connected(url) as conn:
        await tree.grow(conn, border, LEAVES[border.size : size])
        await tree.save_checkpoint(conn, border.size, border.root(), f"note {border.size}")


@asynccontextmanager
async def _cache(url: str, border: Border, size: int) -> AsyncIterator[CheckpointCache]:
    """A cache (ttl 60 s, a tree in memory) over a log whose checkpoint covers ``size`` leaves."""
    await _sign(url, border, size)
    pool = await create_pool(url, 3, 10.0)
    cache = CheckpointCache(pool, ttl=60.0, vkey=None, memory=TreeMemory(budget=1 << 20))
    try:
        yield cache
    finally:
        await cache.close()
        await pool.close()


async def _until(holds: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10.0
    while not holds():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


async def test_a_stale_checkpoint_is_answered_at_once_and_read_again_behind(db_url: str) -> None:
    border = Border()
    async with _cache(db_url, border, 1) as cache:
        pool = cache.pool
        assert (await cache.signed()).tree_size == 1
        await _sign(db_url, border, 2)
        assert (await cache.signed()).tree_size == 1  # read within its ttl
        # read one and a half ttls ago: while no connection is free, a request still gets it at once
        cache._read_at -= 1.5 * cache.ttl
        held = [await pool.acquire() for _ in range(3)]
        assert (await asyncio.wait_for(cache.signed(), 5.0)).tree_size == 1
        for conn in held:
            await pool.release(conn)
        # and the read started behind it finds the new one
        await _until(lambda: cache._value.checkpoint.tree_size == 2, "never read again")  # type: ignore[union-attr]
        # read too long ago (after a quiet spell): the request reads
        await _sign(db_url, border, 3)
        cache._read_at -= STALE_ANSWERED * cache.ttl
        assert (await cache.signed()).tree_size == 3
        # a request waiting for a position the known checkpoint lacks reads, within the ttl too
        await _sign(db_url, border, 4)
        assert (await cache.signed(min_position=4)).tree_size == 4


async def test_the_tree_in_memory_follows_the_checkpoints_and_keeps_their_root(
    db_url: str,
) -> None:
    border = Border()
    async with _cache(db_url, border, 4) as cache:
        memory = cache.memory
        assert memory is not None
        await cache.signed()
        await _until(lambda: memory.size == 4, "the tree was never copied into memory")
        async with connected(db_url) as conn:
            stored = await tree.read_nodes(conn, [(2, 0)])
        assert memory.split([(2, 0)])[0] == stored
        # memory that no longer has a checkpoint's root (the stored tree was rewritten under
        # it, and the rewritten one signed) is emptied and copied again
        memory._levels[2][0:32] = bytes(32)
        await _sign(db_url, border, 5)
        await cache.read_now()
        await _until(lambda: memory.size == 0, "memory with the wrong root was kept")
        await cache.read_now()
        await _until(lambda: memory.size == 5, "the tree was not copied again")
        assert memory.split([(2, 0)])[0] == stored
