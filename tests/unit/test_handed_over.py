"""The leaves a group committer hands to the notary of its process, taken without a gap."""

from __future__ import annotations

from service.notary import HandedOver

A, B, C, D, E, F, G = (bytes([i]) * 32 for i in range(7))


def test_leaves_that_continue_the_tree_are_taken_in_order_and_once() -> None:
    handed = HandedOver(limit=100)
    handed.add(1, [A, B])
    handed.add(3, [C])
    assert handed.take(0) == [A, B, C]
    assert handed.take(3) == []


def test_leaves_the_tree_already_has_are_dropped() -> None:
    handed = HandedOver(limit=100)
    handed.add(1, [A, B])  # both already in a tree of 4 (read from the log)
    handed.add(4, [D, E, F])  # positions 4, 5, 6: only 5 and 6 are new to a tree of 4
    assert handed.take(4) == [E, F]


def test_a_gap_is_left_for_the_log_and_what_follows_it_waits() -> None:
    handed = HandedOver(limit=100)
    handed.add(1, [A])
    handed.add(4, [D, E])  # positions 2 and 3 were appended by another process
    assert handed.take(0) == [A]
    assert handed.take(1) == []  # the notary reads 2 and 3 from the log
    assert handed.take(3) == [D, E]


def test_past_the_limit_the_oldest_go_and_are_read_instead() -> None:
    handed = HandedOver(limit=3)
    handed.add(1, [A, B])
    handed.add(3, [C, D])  # four kept would be past the limit: positions 1 and 2 go
    assert handed.take(0) == []
    assert handed.take(2) == [C, D]
    handed.add(5, [E, F, G])
    handed.clear()
    assert handed.take(4) == []
