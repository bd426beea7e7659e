"""Recomputing the hash chain to prove that stored history was never rewritten."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, NamedTuple

from msgspec import Struct

from events import log
from events.chain import GENESIS, chain
from events.leaves import stored_bytes
from events.log import Connection
from events.records import StoredRow


class VerifyReport(Struct, frozen=True, kw_only=True):
    """The outcome of a verification: intact, or the first position that no longer matches."""

    intact: bool
    checked: int
    head_position: int
    head_hash: str
    first_bad_position: int | None = None
    problem: str | None = None


class Break(NamedTuple):
    """Where a walk stopped: a ``gap`` before ``row``, or ``row``'s ``hash`` does not match."""

    kind: Literal["gap", "hash"]
    row: StoredRow


@dataclass(slots=True)
class ChainWalk:
    """A walk along the hash chain, row by row, as far as it holds.

    ``previous`` is the hash the next row must chain to (None: the walk has no anchor yet, and
    takes the first row as one, unchecked); ``expected`` the position it must have (None: any,
    for the first row of an export that starts later).
    """

    previous: bytes | None
    expected: int | None
    checked: int = 0
    first_position: int | None = None
    last: StoredRow | None = None

    def follow(self, rows: Iterable[StoredRow]) -> Break | None:
        """Check rows in order; stop at the first one with a gap before it or a wrong hash."""
        for row in rows:
            if self.first_position is None:
                self.first_position = row.position
            if self.expected is None:
                self.expected = row.position
                if row.position == 1 and self.previous is None:
                    self.previous = GENESIS
            if row.position != self.expected:
                return Break("gap", row)
            if self.previous is not None and _link(self.previous, row) != row.hash:
                return Break("hash", row)
            self.previous, self.expected, self.last = row.hash, row.position + 1, row
            self.checked += 1
        return None


async def verify_store(
    conn: Connection, progress: Callable[[int], None] | None = None, chunk: int = 2_000
) -> VerifyReport:
    """Recompute the chain over the whole stored log, reading it in position order."""
    # The chain is checked up to the head as it was when verification began: events appended
    # meanwhile are left for the next verification rather than mistaken for a mismatch.
    head_position, head_hash, _ = await log.head(conn)
    walk = ChainWalk(GENESIS, 1)
    async for rows in log.stored_rows(conn, head_position, chunk):
        broken = walk.follow(rows)
        if broken is not None:
            return _bad(walk, broken)
        if progress is not None and walk.checked % chunk == 0:
            progress(walk.checked)
    return _finish(walk.checked, walk.previous or GENESIS, (head_position, head_hash))


def _link(previous: bytes, row: StoredRow) -> bytes:
    return chain(previous, stored_bytes(row))


def _bad(walk: ChainWalk, broken: Break) -> VerifyReport:
    position = walk.expected or 1
    if broken.kind == "gap":
        problem = f"expected position {position}, found {broken.row.position}: the log has a gap"
    else:
        problem = "the stored content no longer matches its hash"
    return VerifyReport(
        intact=False,
        checked=walk.checked,
        head_position=position - 1,
        head_hash=(walk.previous or GENESIS).hex(),
        first_bad_position=position,
        problem=problem,
    )


def _finish(checked: int, last: bytes, head: tuple[int, bytes]) -> VerifyReport:
    if head[0] != checked or head[1] != last:
        return VerifyReport(
            intact=False,
            checked=checked,
            head_position=checked,
            head_hash=last.hex(),
            # events missing after the last intact one, or the head's own hash is wrong
            first_bad_position=checked + 1 if head[0] > checked else head[0],
            problem="the recorded head does not match the end of the chain",
        )
    return VerifyReport(intact=True, checked=checked, head_position=checked, head_hash=last.hex())
