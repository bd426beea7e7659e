"""The stored tree's nodes held in memory, so that a proof reads no database.

A stored node never changes (events/merkle.py), so a copy of it is never stale. Each level is
one ``bytearray`` of its nodes' hashes, 32 bytes each, in index order from 0: a tree of n
leaves takes about 64·n bytes. Within a byte budget the lowest levels are left out (each
level left out halves what the rest take); a proof reads those few nodes from the database.

The copy grows by catching up with a tree size the ledger signed, in the background, so a
request never waits for it: a node not yet held is read from the database, as without it.
"""

from __future__ import annotations

from collections.abc import Iterable

from events.log import Connection
from events.merkle import Node, Range, node_hash, range_nodes

HASH = 32
CATCH_UP_CHUNK = 65_536  # nodes a statement
FOLDED_KEPT = 4096  # folded ranges kept, at most


_READ_RUN = """
    SELECT string_agg(hash, ''::bytea ORDER BY idx), count(*), max(idx) FROM merkle_nodes
    WHERE level = $1 AND idx >= $2 AND idx < $3
"""


def lowest_level(size: int, budget: int) -> int:
    """Return the lowest level whose nodes, and those above, fit ``budget`` for ``size`` leaves."""
    low = 0
    while size and 2 * HASH * size > budget << low:
        low += 1
    return low


class TreeMemory:
    """Every stored node from level ``low`` up, of a tree of up to ``size`` leaves."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.low = 0
        self.size = 0  # the tree size every held level covers
        self._levels: dict[int, bytearray] = {}
        # Ranges on a tree's right edge, folded: every proof in the tree of one size shares them.
        self._folded: dict[Range, bytes] = {}

    @property
    def held_bytes(self) -> int:
        """Return the memory the held hashes take."""
        return sum(len(level) for level in self._levels.values())

    def split(self, wanted: Iterable[Node]) -> tuple[dict[Node, bytes], set[Node]]:
        """Return the held hashes of ``wanted``, and the nodes not held."""
        found: dict[Node, bytes] = {}
        missing: set[Node] = set()
        levels = self._levels
        for node in wanted:
            level, idx = node
            held = levels.get(level)
            start = idx * HASH
            if held is not None and start + HASH <= len(held):
                found[node] = bytes(held[start : start + HASH])
            else:
                missing.add(node)
        return found, missing

    def hashes(self, ranges: Iterable[Range]) -> list[bytes] | None:
        """Return ``MTH(D[start:end])`` of each range from the held nodes; None if one is missing.

        A proof's ranges are complete subtrees, one node each, except those on the tree's right
        edge, folded from O(log n) nodes.
        """
        levels = self._levels
        result: list[bytes] = []
        for start, end in ranges:
            width = end - start
            if not width & (width - 1) and not start % width:  # one complete subtree
                nodes: list[Node] = [(width.bit_length() - 1, start // width)]
            else:
                known = self._folded.get((start, end))
                if known is not None:
                    result.append(known)
                    continue
                nodes = range_nodes(start, end)
            folded = b""
            for level, idx in reversed(nodes):
                held = levels.get(level)
                at = idx * HASH
                if held is None or at + HASH > len(held):
                    return None
                right = bytes(held[at : at + HASH])
                folded = node_hash(right, folded) if folded else right
            if len(nodes) > 1:
                if len(self._folded) >= FOLDED_KEPT:
                    self._folded.clear()
                self._folded[(start, end)] = folded
            result.append(folded)
        return result

    def clear(self) -> None:
        """Hold nothing (it is copied again from the next catch-up)."""
        self.low = self.size = 0
        self._levels.clear()
        self._folded.clear()

    async def catch_up(self, conn: Connection, size: int) -> None:
        """Hold every stored node of the tree of ``size`` leaves (from level ``low`` up).

        Raises LookupError if the database does not hold them all (a tree not built so far);
        what was read stays held.
        """
        if size <= self.size or not self.budget:
            return
        low = lowest_level(size, self.budget)
        for level in range(self.low, low):  # the budget no longer covers these
            self._levels.pop(level, None)
        self.low = low
        for level in range(low, size.bit_length()):
            held = self._levels.setdefault(level, bytearray())
            want = size >> level
            while (have := len(held) // HASH) < want:
                end = min(want, have + CATCH_UP_CHUNK)
                row = await conn.fetchrow(_READ_RUN, level, have, end)
                run, count, last = row if row is not None else (None, 0, None)
                if run is not None and last == have + count - 1:  # no gap from ``have``
                    held += run
                if count != end - have:
                    raise LookupError(f"the tree holds no node ({level}, {len(held) // HASH}) yet")
        self.size = size
