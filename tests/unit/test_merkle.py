"""The tree and its proofs against RFC 9162's vectors and two verifiers that share no code."""

from __future__ import annotations

import warnings

import pytest

from events import merkle
from events.merkle import (
    Border,
    ProofError,
    consistency_ranges,
    inclusion_ranges,
    leaf_hash,
    proof_hashes,
    verify_consistency,
    verify_inclusion,
)
from tests.unit import merkle_vectors as v


def _tree(entries: list[bytes]) -> tuple[dict[merkle.Node, bytes], list[bytes]]:
    """Build a tree; return its stored nodes and the root after each leaf (roots[0] empty)."""
    border, nodes, roots = Border(), {}, [merkle.EMPTY_ROOT]
    for entry in entries:
        for level, index, digest in border.append(leaf_hash(entry)):
            nodes[(level, index)] = digest
        roots.append(border.root())
    return nodes, roots


VECTOR_NODES, VECTOR_ROOTS = _tree([bytes.fromhex(x) for x in v.LEAF_INPUTS])


def test_roots_match_the_rfc_vectors() -> None:
    assert [r.hex() for r in VECTOR_ROOTS] == v.ROOTS


@pytest.mark.parametrize(("index", "size", "proof"), v.INCLUSION)
def test_inclusion_proofs_match_the_rfc_vectors(index: int, size: int, proof: list[str]) -> None:
    hashes = proof_hashes(inclusion_ranges(index, size), VECTOR_NODES)
    assert [h.hex() for h in hashes] == proof
    leaf = leaf_hash(bytes.fromhex(v.LEAF_INPUTS[index]))
    verify_inclusion(index, size, leaf, hashes, VECTOR_ROOTS[size])


@pytest.mark.parametrize(("first", "second", "proof"), v.CONSISTENCY)
def test_consistency_proofs_match_the_rfc_vectors(
    first: int, second: int, proof: list[str]
) -> None:
    hashes = proof_hashes(consistency_ranges(first, second), VECTOR_NODES)
    assert [h.hex() for h in hashes] == proof
    verify_consistency(first, second, VECTOR_ROOTS[first], VECTOR_ROOTS[second], hashes)


ENTRIES = [f"event {i}".encode() for i in range(70)]
NODES, ROOTS = _tree(ENTRIES)


def _flipped(hashes: list[bytes], i: int) -> list[bytes]:
    changed = list(hashes)
    changed[i] = bytes([changed[i][0] ^ 1]) + changed[i][1:]
    return changed


def test_every_inclusion_proof_up_to_70_verifies_and_no_flipped_one_does() -> None:
    for size in range(1, 71):
        for index in range(size):
            hashes = proof_hashes(inclusion_ranges(index, size), NODES)
            leaf = leaf_hash(ENTRIES[index])
            verify_inclusion(index, size, leaf, hashes, ROOTS[size])
            for i in range(len(hashes)):
                with pytest.raises(ProofError):
                    verify_inclusion(index, size, leaf, _flipped(hashes, i), ROOTS[size])


def test_every_consistency_proof_up_to_70_verifies_and_no_flipped_one_does() -> None:
    for second in range(1, 71):
        for first in range(1, second + 1):
            hashes = proof_hashes(consistency_ranges(first, second), NODES)
            verify_consistency(first, second, ROOTS[first], ROOTS[second], hashes)
            for i in range(len(hashes)):
                with pytest.raises(ProofError):
                    verify_consistency(
                        first, second, ROOTS[first], ROOTS[second], _flipped(hashes, i)
                    )


def test_roots_agree_with_pymerkle_for_sizes_1_to_300_and_larger() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pymerkle import InmemoryTree

        entries = [f"entry {i}".encode() for i in range(2100)]
        reference = InmemoryTree(algorithm="sha256")
        border = Border()
        checked = [*range(1, 301), 1023, 1024, 1025, 2047, 2100]
        for size, entry in enumerate(entries, start=1):
            reference.append_entry(entry)
            border.append(leaf_hash(entry))
            if size in checked:
                assert border.root() == reference.get_state(size), size


def test_proofs_verify_with_tlog_scales() -> None:
    from tlog_scales.tlog import ConsistencyProof, InclusionProof

    for second in range(1, 40):
        for first in range(1, second + 1):
            hashes = proof_hashes(consistency_ranges(first, second), NODES)
            ConsistencyProof(first, second, hashes).check(ROOTS[first], ROOTS[second])
            index = first - 1
            inclusion = proof_hashes(inclusion_ranges(index, second), NODES)
            InclusionProof(index, second, inclusion).check(leaf_hash(ENTRIES[index]), ROOTS[second])


def test_a_border_rebuilt_from_stored_nodes_continues_the_tree() -> None:
    size = 45
    border = Border(size, [NODES[n] for n in merkle.border_nodes(size)])
    for entry in ENTRIES[size:]:
        border.append(leaf_hash(entry))
    assert border.root() == ROOTS[70]
