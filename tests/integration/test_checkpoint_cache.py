"""The latest checkpoint as requests see it: a stale one is answered at once and read behind."""

from __future__ import annotations

import asyncio
import time

from events import tree
from events.merkle import Border
from service.checkpoints import CheckpointCache
from service.database import create_pool
from tests.support import connected

LEAVES = [bytes([i]) * 32 for i in range(3)]


async def _sign(url: str, border: Border, leaves: list[bytes]) -> None:
    """Store the leaves' nodes and a checkpoint of the tree they make (signature not checked)."""
    async with connected(url) as conn:
        await tree.grow(conn, border, leaves)
        await tree.save_checkpoint(conn, border.size, border.root(), f"note {border.size}")


async def test_a_stale_checkpoint_is_answered_at_once_and_read_again_behind(db_url: str) -> None:
    border = Border()
    await _sign(db_url, border, LEAVES[:1])
    pool = await create_pool(db_url, 3, 10.0)
    cache = CheckpointCache(pool, ttl=0.0, vkey=None)
    try:
        assert (await cache.signed()).tree_size == 1
        await _sign(db_url, border, LEAVES[1:2])
        # while no connection is free, a request still gets the checkpoint it had
        held = [await pool.acquire() for _ in range(3)]
        assert (await asyncio.wait_for(cache.signed(), 5.0)).tree_size == 1
        for conn in held:
            await pool.release(conn)
        # and the read started behind it finds the new one
        deadline = time.monotonic() + 10.0
        while (await cache.signed()).tree_size != 2:
            assert time.monotonic() < deadline, "the checkpoint was never read again"
            await asyncio.sleep(0.01)
        # a request waiting for a position the known checkpoint lacks reads at once
        await _sign(db_url, border, LEAVES[2:3])
        assert (await cache.signed(min_position=3)).tree_size == 3
    finally:
        await cache.close()
        await pool.close()
