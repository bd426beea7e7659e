"""Checking the stored tree against the events, and the signed checkpoints against the tree."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from events import log, tree
from events.leaves import stored_bytes
from events.log import Connection
from events.merkle import Border, leaf_hash
from events.tree import SignedCheckpoint


@dataclass(frozen=True)
class Fork:
    """A signed checkpoint the stored log no longer extends: what was signed, what is stored."""

    signed: SignedCheckpoint
    stored_root: bytes | None  # the root the stored log has at that size (None: not built)

    def describe(self) -> str:
        """Say which checkpoint the log no longer extends, and why."""
        size = self.signed.tree_size
        found = (
            f"its stored tree of {size} events has root {self.stored_root.hex()}"
            if self.stored_root is not None
            else f"its stored tree no longer holds {size} events"
        )
        return (
            f"the stored log no longer extends the checkpoint signed at {self.signed.signed_at}"
            f" (tree size {size}, root {self.signed.root.hex()}): {found}"
        )


async def fork_of(conn: Connection, checkpoint: SignedCheckpoint) -> Fork | None:
    """Return the fork if the stored tree's root at the checkpoint's size differs from it."""
    try:
        stored = await tree.root_at(conn, checkpoint.tree_size)
    except tree.MissingNodeError:
        return Fork(checkpoint, None)
    return None if stored == checkpoint.root else Fork(checkpoint, stored)


@dataclass
class TreeReport:
    """The stored tree checked against the events: the first mismatch, and forked checkpoints."""

    checked: int = 0
    built: int = 0
    first_bad_leaf: int | None = None  # 0-based
    forks: list[Fork] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        """Whether every stored node and every signed checkpoint matches the events."""
        return self.first_bad_leaf is None and not self.forks


async def verify_tree(
    conn: Connection, progress: Callable[[int], None] | None = None, chunk: int = 5_000
) -> TreeReport:
    """Rebuild the tree from the events in memory; compare its nodes and roots with the stored."""
    report = TreeReport(built=await tree.built_size(conn))
    signed = {c.tree_size: c for c in await tree.checkpoints(conn)}
    border = Border()
    async for rows in log.stored_rows(conn, report.built, chunk):
        completed: list[tuple[int, int, bytes]] = []
        for row in rows:
            completed += border.append(leaf_hash(stored_bytes(row)))
            checkpoint = signed.get(border.size)
            if checkpoint is not None and checkpoint.root != border.root():
                report.forks.append(Fork(checkpoint, border.root()))
        stored = await tree.read_nodes(conn, [(level, idx) for level, idx, _ in completed])
        for level, idx, digest in completed:
            if stored.get((level, idx)) != digest and report.first_bad_leaf is None:
                report.first_bad_leaf = idx << level
        report.checked = border.size
        if progress is not None:
            progress(border.size)
    report.forks += [Fork(c, None) for size, c in signed.items() if size > border.size]
    return report
