"""The stored Merkle tree and signed checkpoints: building, reading proofs, checking.

The tree is built by a follower of the log, not by the append transaction: appends stay as
fast as before, and the tree trails the head by the follower's batch. Each batch stores the
nodes it completes in one transaction, so a crash leaves the tree at a batch boundary and the
next follower continues from there. Only one process builds and signs at a time (the caller
holds ``SIGNER_LOCK_KEY``), so two followers never write the same node.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import asyncpg

from events import log
from events.leaves import stored_bytes
from events.log import Connection
from events.merkle import (
    Border,
    Node,
    Range,
    border_nodes,
    consistency_ranges,
    inclusion_ranges,
    leaf_hash,
    nodes_of,
    proof_hashes,
    range_hash,
    range_nodes,
)
from events.tree_memory import TreeMemory

# Held (a session-level advisory lock) by the one process that extends the tree and signs.
SIGNER_LOCK_KEY = 0x7E1F7EE
BUILD_CHUNK = 5_000

_READ_NODES = """
    SELECT n.level, n.idx, n.hash FROM merkle_nodes n
    JOIN unnest($1::smallint[], $2::bigint[]) AS k(level, idx) USING (level, idx)
"""


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint the ledger signed: its size, root, note text and when."""

    tree_size: int
    root: bytes
    note: str
    signed_at: dt.datetime


async def built_size(conn: Connection) -> int:
    """Return how many leaves the stored tree has."""
    size: int = await conn.fetchval(
        "SELECT coalesce(max(idx) + 1, 0) FROM merkle_nodes WHERE level = 0"
    )
    return size


# Where a proof's nodes are read from: a connection, or a pool when memory may hold them all.
Source = Connection | asyncpg.Pool


async def read_nodes(conn: Source, nodes: Iterable[Node]) -> dict[Node, bytes]:
    """Return the stored hashes of the given nodes (those stored)."""
    keys = list(nodes)
    rows = await conn.fetch(_READ_NODES, [k[0] for k in keys], [k[1] for k in keys])
    return {(r["level"], r["idx"]): bytes(r["hash"]) for r in rows}


class MissingNodeError(LookupError):
    """A node the tree should have is not stored (the tree is not built that far)."""


async def _nodes_for(
    conn: Source, wanted: set[Node], memory: TreeMemory | None = None
) -> dict[Node, bytes]:
    """Return the hashes of ``wanted``: from ``memory`` those it holds, the others stored."""
    found, rest = memory.split(wanted) if memory is not None else ({}, wanted)
    if not rest:
        return found
    stored = await read_nodes(conn, rest)
    if len(stored) != len(rest):
        missing = sorted(rest - stored.keys())[0]
        raise MissingNodeError(f"the tree holds no node {missing} yet")
    return found | stored


async def root_at(conn: Source, size: int, memory: TreeMemory | None = None) -> bytes:
    """Return the root hash of the tree of the first ``size`` leaves, from the stored nodes
    (those ``memory`` holds from it)."""
    return range_hash(0, size, await _nodes_for(conn, set(range_nodes(0, size)), memory))


async def inclusion(
    conn: Source, index: int, size: int, memory: TreeMemory | None = None
) -> tuple[bytes, list[bytes]]:
    """Return the leaf hash at ``index`` and its inclusion proof in the tree of ``size``."""
    ranges = inclusion_ranges(index, size)
    held = memory.hashes([(index, index + 1), *ranges]) if memory is not None else None
    if held is not None:
        return held[0], held[1:]
    nodes = await _nodes_for(conn, nodes_of(ranges) | {(0, index)}, memory)
    return nodes[(0, index)], proof_hashes(ranges, nodes)


async def inclusions(
    conn: Source, indexes: list[int], size: int, memory: TreeMemory | None = None
) -> list[tuple[bytes, list[bytes]]]:
    """Return the leaf hash and inclusion proof of each index, from one read of the nodes."""
    ranges = [inclusion_ranges(index, size) for index in indexes]
    wanted = {(0, i) for i in indexes}.union(*map(nodes_of, ranges))
    nodes = await _nodes_for(conn, wanted, memory)
    folded: dict[Range, bytes] = {}
    return [
        (nodes[(0, i)], proof_hashes(r, nodes, folded))
        for i, r in zip(indexes, ranges, strict=True)
    ]


async def consistency(
    conn: Source, first: int, second: int, memory: TreeMemory | None = None
) -> list[bytes]:
    """Return the consistency proof from the tree of ``first`` leaves to that of ``second``."""
    ranges = consistency_ranges(first, second)
    held = memory.hashes(ranges) if memory is not None else None
    if held is not None:
        return held
    return proof_hashes(ranges, await _nodes_for(conn, nodes_of(ranges), memory))


async def load_border(conn: Connection) -> Border:
    """Return the right border of the stored tree, to extend it."""
    size = await built_size(conn)
    wanted = border_nodes(size)
    nodes = await _nodes_for(conn, set(wanted))
    return Border(size, [nodes[n] for n in wanted])


async def extend(
    conn: Connection,
    border: Border,
    until: int,
    progress: Callable[[int], None] | None = None,
    chunk: int = BUILD_CHUNK,
) -> int:
    """Add the events after ``border.size`` up to ``until`` to the tree; return how many.

    Each chunk's nodes are stored in a transaction of their own; ``border`` moves only once
    they are committed, so after an error it still describes the stored tree.
    """
    added = 0
    async for rows in log.stored_rows(conn, until, chunk, after=border.size):
        for i, row in enumerate(rows, start=border.size + 1):
            if row.position != i:
                raise MissingNodeError(f"the log has a gap before position {row.position}")
        await grow(conn, border, [leaf_hash(stored_bytes(row)) for row in rows])
        added += len(rows)
        if progress is not None:
            progress(border.size)
    return added


async def grow(conn: Connection, border: Border, leaves: Iterable[bytes]) -> None:
    """Store the nodes the leaf hashes after ``border.size`` complete, in one transaction.

    ``border`` moves only once they are committed, so after an error it still describes the
    stored tree.
    """
    trial = Border(border.size, border.hashes)
    nodes: list[tuple[int, int, bytes]] = []
    for leaf in leaves:
        nodes += trial.append(leaf)
    async with conn.transaction():
        await conn.copy_records_to_table(
            "merkle_nodes", records=nodes, columns=("level", "idx", "hash")
        )
    border.size, border.hashes = trial.size, trial.hashes


async def latest_checkpoint(conn: Connection) -> SignedCheckpoint | None:
    """Return the last checkpoint the ledger signed, or None."""
    row = await conn.fetchrow(
        """SELECT tree_size, root, note, signed_at FROM signed_checkpoints
           ORDER BY tree_size DESC LIMIT 1"""
    )
    if row is None:
        return None
    return SignedCheckpoint(row["tree_size"], bytes(row["root"]), row["note"], row["signed_at"])


async def save_checkpoint(conn: Connection, size: int, root: bytes, note: str) -> None:
    """Keep a checkpoint just signed."""
    await conn.execute(
        "INSERT INTO signed_checkpoints (tree_size, root, note) VALUES ($1, $2, $3)",
        size,
        root,
        note,
    )


async def checkpoints(conn: Connection) -> list[SignedCheckpoint]:
    """Return every checkpoint the ledger signed, by size."""
    rows = await conn.fetch(
        "SELECT tree_size, root, note, signed_at FROM signed_checkpoints ORDER BY tree_size"
    )
    return [
        SignedCheckpoint(r["tree_size"], bytes(r["root"]), r["note"], r["signed_at"]) for r in rows
    ]


async def try_lock_signer(conn: Connection) -> bool:
    """Take the signer's lock on this session if no other holds it."""
    taken: bool = await conn.fetchval("SELECT pg_try_advisory_lock($1)", SIGNER_LOCK_KEY)
    return taken
