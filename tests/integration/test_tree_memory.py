"""The tree's nodes held in memory: proofs from them are the stored tree's, and read nothing."""

from __future__ import annotations

import hashlib

import asyncpg
import pytest

from events import tree
from events.merkle import Border
from events.tree_memory import HASH, TreeMemory, lowest_level
from tests.support import connected

LEAVES = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(300)]
SIZES = (1, 2, 3, 5, 8, 63, 64, 65, 137, 255, 256, 300)


def _picks(size: int) -> range:
    """Every index of a small tree, every seventh of a larger one."""
    return range(0, size, 1 if size <= 70 else 7)


async def _stored_tree(conn: asyncpg.Connection, sizes: tuple[int, ...]) -> None:
    border = Border()
    for size in sizes:
        await tree.grow(conn, border, LEAVES[border.size : size])


async def test_proofs_from_memory_alone_are_the_stored_trees(db_url: str) -> None:
    async with connected(db_url) as conn:
        memory = TreeMemory(budget=1 << 20)
        await _stored_tree(conn, (137,))
        await memory.catch_up(conn, 137)  # caught up twice, as the log grows
        await _stored_tree_after(conn, 137, 300)
        await memory.catch_up(conn, 300)
        assert memory.low == 0
        assert memory.held_bytes == HASH * sum(300 >> level for level in range(9))
        gone = await asyncpg.connect(db_url)
        await gone.close()  # any read of the database now raises
        for size in SIZES:
            for i in _picks(size):
                assert await tree.inclusion(gone, i, size, memory) == await tree.inclusion(
                    conn, i, size
                )
            for first in _picks(size):
                if first:
                    assert await tree.consistency(
                        gone, first, size, memory
                    ) == await tree.consistency(conn, first, size)
        proofs = await tree.inclusions(gone, list(range(300)), 300, memory)
        assert proofs == await tree.inclusions(conn, list(range(300)), 300)


async def _stored_tree_after(conn: asyncpg.Connection, built: int, size: int) -> None:
    border = await tree.load_border(conn)
    assert border.size == built
    await tree.grow(conn, border, LEAVES[built:size])


async def test_a_budget_leaves_the_lowest_levels_to_the_database(db_url: str) -> None:
    async with connected(db_url) as conn:
        await _stored_tree(conn, (300,))
        budget = 2 * HASH * 300 // 4
        memory = TreeMemory(budget)
        await memory.catch_up(conn, 300)
        assert memory.low == lowest_level(300, budget) == 2
        assert 0 < memory.held_bytes <= budget
        found, missing = memory.split({(0, 5), (1, 7), (2, 3), (8, 0), (2, 75)})
        assert set(found) == {(2, 3), (8, 0)}
        assert missing == {(0, 5), (1, 7), (2, 75)}
        for size in SIZES:
            for i in _picks(size):
                assert await tree.inclusion(conn, i, size, memory) == await tree.inclusion(
                    conn, i, size
                )


async def test_catching_up_past_the_built_tree_keeps_what_it_read(db_url: str) -> None:
    async with connected(db_url) as conn:
        await _stored_tree(conn, (100,))
        memory = TreeMemory(budget=1 << 20)
        with pytest.raises(LookupError, match="no node"):
            await memory.catch_up(conn, 150)
        assert memory.size == 0  # not every level covers 150
        found, missing = memory.split({(0, 99), (0, 100)})
        assert found == {(0, 99): LEAVES[99]}
        assert missing == {(0, 100)}
        nothing = TreeMemory(budget=0)
        await nothing.catch_up(conn, 100)
        assert nothing.held_bytes == 0


async def test_as_the_tree_grows_past_the_budget_its_lowest_levels_are_let_go(
    db_url: str,
) -> None:
    async with connected(db_url) as conn:
        await _stored_tree(conn, (300,))
        budget = 2 * HASH * 100  # the whole tree of 100 leaves, a quarter of that of 300
        memory = TreeMemory(budget)
        await memory.catch_up(conn, 100)
        assert memory.low == 0 and memory.split([(0, 99)])[1] == set()
        await memory.catch_up(conn, 300)
        assert memory.low == 2
        assert memory.held_bytes <= budget
        assert memory.split([(0, 99), (1, 49)])[1] == {(0, 99), (1, 49)}
        for i in _picks(300):
            assert await tree.inclusion(conn, i, 300, memory) == await tree.inclusion(conn, i, 300)
