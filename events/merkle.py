"""The log's Merkle tree as RFC 9162 defines it: hashes, proofs, their checks, the right border.

Leaf *i* (0-based) is the event at position *i*+1. A node is named by ``(level, index)``: the
complete subtree of ``2**level`` leaves starting at leaf ``index * 2**level``. Only complete
subtrees are ever stored, so a stored node never changes; every other hash a proof needs (a
subtree on the right edge of a tree, or a root) is folded from O(log n) of them.

Proofs are described here as *ranges* of leaves ``[start, end)`` whose subtree hashes
(RFC 9162's ``MTH(D[start:end])``) the proof lists, so that the caller can fetch every node they
need in one read and then compute the proof from them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

Node = tuple[int, int]  # (level, index)
Range = tuple[int, int]  # leaves [start, end)

EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof that does not verify, or that does not fit the sizes it claims."""


def leaf_hash(entry: bytes) -> bytes:
    """Return ``SHA-256(0x00 || entry)``."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two smaller than ``size`` (size > 1)."""
    return 1 << ((size - 1).bit_length() - 1)


def range_nodes(start: int, end: int) -> list[Node]:
    """Return the complete subtrees whose hashes fold into ``MTH(D[start:end])``, left to right.

    ``start`` must be where RFC 9162's recursion puts a subtree: a multiple of the largest
    power of two not above ``end - start``.
    """
    nodes: list[Node] = []
    while start < end:
        level = (end - start).bit_length() - 1
        while start % (1 << level):
            level -= 1
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def range_hash(start: int, end: int, nodes: Mapping[Node, bytes]) -> bytes:
    """Return ``MTH(D[start:end])`` from the stored nodes it is made of."""
    if start == end:
        return EMPTY_ROOT
    width = end - start
    if not width & (width - 1) and not start % width:  # one complete subtree, stored whole
        return nodes[(width.bit_length() - 1, start // width)]
    hashes = [nodes[n] for n in range_nodes(start, end)]
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """Return the ranges of the inclusion proof of leaf ``index`` in a tree of ``size`` leaves."""
    ranges: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    return ranges[::-1]  # from the leaf's sibling up to the root's child


def consistency_ranges(first: int, second: int) -> list[Range]:
    """Return the ranges of the consistency proof from size ``first`` to size ``second``."""
    if not 0 < first < second:
        return []
    ranges: list[Range] = []
    start, end, whole = 0, second, True
    while end != first:
        k = _split(end - start)
        if first - start <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            whole = False
    if not whole:
        ranges.append((start, end))
    return ranges[::-1]


def nodes_of(ranges: Iterable[Range]) -> set[Node]:
    """Every stored node the given ranges are folded from."""
    nodes: set[Node] = set()
    for start, end in ranges:
        width = end - start
        if width and not width & (width - 1) and not start % width:  # one complete subtree
            nodes.add((width.bit_length() - 1, start // width))
        else:
            nodes.update(range_nodes(start, end))
    return nodes


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check an inclusion proof (RFC 9162 §2.1.3.2); raise ProofError if it fails."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the inclusion proof is shorter than the tree is deep")
    if r != root:
        raise ProofError("the inclusion proof does not lead to the root")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check a consistency proof (RFC 9162 §2.1.4.2); raise ProofError if it fails."""
    if not 0 <= first <= second:
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    if first == second or first == 0:
        _check_trivial(first, second, first_root, second_root, proof)
        return
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: the first root is the proof's start
        path.insert(0, first_root)
    if not path:
        raise ProofError("the consistency proof is empty")
    fr, sr = _fold_consistency(first, second, path)
    if fr != first_root:
        raise ProofError("the consistency proof does not lead to the first root")
    if sr != second_root:
        raise ProofError("the consistency proof does not lead to the second root")


def _check_trivial(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """The sizes need no proof (equal, or from the empty tree): it must be empty."""
    if proof:
        raise ProofError("a proof between these sizes must be empty")
    if first == second and first_root != second_root:
        raise ProofError(f"two different roots for the same size {first}")


def _fold_consistency(first: int, second: int, path: list[bytes]) -> tuple[bytes, bytes]:
    """Fold a consistency path into the two roots it leads to (RFC 9162's loop)."""
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the consistency proof is shorter than the tree is deep")
    return fr, sr


class Border:
    """The right border of a tree: one complete subtree per set bit of its size, left to right.

    Appending a leaf merges equal-sized subtrees as binary addition carries, and yields every
    complete subtree it completes (the leaf included) as ``(level, index, hash)``, to be stored.
    The root is folded from the border in O(log n).
    """

    __slots__ = ("hashes", "size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != size.bit_count():
            raise ValueError(f"a tree of size {size} has {size.bit_count()} border subtrees")
        self.size = size
        self.hashes = list(hashes)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf hash; return the nodes it completes."""
        index, level, current = self.size, 0, leaf
        completed = [(0, index, leaf)]
        while index & 1:
            current = node_hash(self.hashes.pop(), current)
            index, level = index >> 1, level + 1
            completed.append((level, index, current))
        self.hashes.append(current)
        self.size += 1
        return completed

    def root(self) -> bytes:
        """Return the root hash of the tree of ``size`` leaves."""
        if not self.hashes:
            return EMPTY_ROOT
        result = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            result = node_hash(left, result)
        return result


def border_nodes(size: int) -> list[Node]:
    """Return the complete subtrees that make up the right border of a tree of ``size``."""
    return range_nodes(0, size)


def proof_hashes(
    ranges: Iterable[Range], nodes: Mapping[Node, bytes], folded: dict[Range, bytes] | None = None
) -> list[bytes]:
    """Return the hashes of a proof's ranges, from the stored nodes they are folded from.

    ``folded`` keeps the hash of each range folded, for proofs in one tree that share ranges
    (the events of one stream share most of theirs, near the root).
    """
    if folded is None:
        return [range_hash(start, end, nodes) for start, end in ranges]
    hashes = []
    for start, end in ranges:
        found = folded.get((start, end))
        if found is None:
            found = folded[(start, end)] = range_hash(start, end, nodes)
        hashes.append(found)
    return hashes
