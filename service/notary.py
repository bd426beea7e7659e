"""The notary: follows the log, extends its Merkle tree and signs checkpoints of it.

One notary at a time, across every process (``serve``, ``worker``): each tries the signer's
advisory lock on a connection of its own and only the holder works; the others wait and take
over if it goes away. The holder keeps the tree's right border in memory, so a new root costs
O(log n), and signs at most one checkpoint per interval, only of sizes it has built. The group
committer of its own process hands it the canonical encoding of every event it commits, so
the leaves of this process's appends are hashed without reading them back; what other
processes appended (or what was handed over while it did not hold the lock) is read from the
log.

Before each signature it checks that the stored tree still extends the last checkpoint it
signed (the root recomputed from the stored nodes at that size matches), and that the stored
nodes agree with the tree it holds in memory. If not, history was rewritten under it: it stops
signing for good, says so, and the fork is reported by ``/health`` and ``ledger verify``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque

import asyncpg

from events import log as event_log
from events import tree
from events.merkle import Border, leaf_hash
from events.notes import Checkpoint, NoteError
from events.planning import Row
from events.tree import SignedCheckpoint
from events.tree_check import fork_of
from events.wakes import woken
from service.http.metrics import TREE_LEAVES
from service.signing import Signer

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0
CLOSE_SECONDS = 2.0
FRESH_LIMIT = 200_000  # leaf hashes handed over and kept between rounds, at most
TREE_LEAVES_HANDED_OVER = TREE_LEAVES.labels("handed_over")
TREE_LEAVES_READ = TREE_LEAVES.labels("read")


class Notary:
    """Extends the tree and signs checkpoints while it holds the signer's lock."""

    def __init__(self, url: str, signer: Signer, interval: float) -> None:
        self.url = url
        self.signer = signer
        self.interval = interval
        self.stopped: str | None = None  # why it stopped signing, for good
        self.signed: SignedCheckpoint | None = None
        self._wake = asyncio.Event()
        self._serving = False
        self._handed = HandedOver(FRESH_LIMIT)

    def wake(self) -> None:
        """Look at the log now (an append was committed)."""
        self._wake.set()

    def committed(self, rows: list[Row]) -> None:
        """Take the rows this process just committed, in position order, to hash their leaves.

        Hashed on the event loop's next turn, not in the committer's: the next group does not
        wait for it.
        """
        if self._serving:
            asyncio.get_running_loop().call_soon(self._hand_over, rows)

    def _hand_over(self, rows: list[Row]) -> None:
        if not self._serving:
            return
        leaves = [leaf_hash(row.canonical) for row in rows if row.canonical is not None]
        if len(leaves) == len(rows):
            self._handed.add(rows[0].position, leaves)

    async def run(self) -> None:
        """Work whenever this process holds the lock; retry after database trouble."""
        while True:
            try:
                conn = await asyncpg.connect(self.url)
                try:
                    if await tree.try_lock_signer(conn):
                        await self._serve(conn)
                finally:
                    # bounded: a stopping process must not wait on a connection that hangs
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=CLOSE_SECONDS)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("the notary lost its database connection: %s", exc)
            await self._pause(RETRY_SECONDS)

    async def _serve(self, conn: asyncpg.Connection) -> None:
        border = await tree.load_border(conn)
        latest = await tree.latest_checkpoint(conn)
        if latest is not None and (self.signed is None or latest.tree_size > self.signed.tree_size):
            self.signed = latest
        if self.signed is not None and not self._mine(self.signed):
            return
        log.info("the notary builds the tree from %d events and signs", border.size)
        self._serving = True
        try:
            while self.stopped is None:
                started = time.monotonic()
                self._wake.clear()
                head = await event_log.head_position(conn)
                fresh = self._handed.take(border.size)
                if fresh:
                    await tree.grow(conn, border, fresh)
                    TREE_LEAVES_HANDED_OVER.inc(len(fresh))
                if head > border.size:
                    TREE_LEAVES_READ.inc(await tree.extend(conn, border, head))
                await self._sign(conn, border)
                # At most one checkpoint per interval: appends during the pause wait for it.
                await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))
                await self._pause(self.interval)
        finally:
            self._serving = False
            self._handed.clear()
        await asyncio.Event().wait()  # stopped: keep the lock, so that no other process signs

    def _mine(self, checkpoint: SignedCheckpoint) -> bool:
        try:
            self.signer.verifier.verify(checkpoint.note)
        except NoteError:
            log.error(
                "the last checkpoint (tree size %d) was not signed by this key (%s): not signing; "
                "configure the key and LEDGER_LOG_ORIGIN the ledger signed with",
                checkpoint.tree_size,
                self.signer.vkey,
            )
            return False
        return True

    async def _sign(self, conn: asyncpg.Connection, border: Border) -> None:
        last = self.signed
        if border.size == 0 or (last is not None and last.tree_size >= border.size):
            return
        fork = await fork_of(conn, last) if last is not None else None
        if fork is not None:
            self._stop(fork.describe())
            return
        root, stored = border.root(), await tree.root_at(conn, border.size)
        if stored != root:
            self._stop(
                f"the stored tree of {border.size} events has root {stored.hex()}, not the root "
                f"{root.hex()} this notary built from the log"
            )
            return
        note = self.signer.sign(Checkpoint(self.signer.origin, border.size, root))
        await tree.save_checkpoint(conn, border.size, root, note)
        saved = await tree.latest_checkpoint(conn)
        assert saved is not None
        self.signed = saved

    def _stop(self, why: str) -> None:
        self.stopped = why
        log.error("refusing to sign any further checkpoint: %s", why)

    async def _pause(self, seconds: float) -> None:
        await woken(self._wake, seconds)


class HandedOver:
    """Leaf hashes of events committed by this process, kept until the notary takes them.

    Groups arrive in position order, but not every position does: events other processes
    appended, and groups committed while this notary did not hold the lock, are missing. At
    most ``limit`` leaves are kept; the oldest go first (the notary then reads them).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._groups: deque[tuple[int, list[bytes]]] = deque()  # (first position, leaves)
        self._count = 0

    def add(self, first: int, leaves: list[bytes]) -> None:
        """Keep the leaves of the events at positions ``first``, ``first + 1``, ..."""
        self._groups.append((first, leaves))
        self._count += len(leaves)
        while self._count > self.limit:
            self._count -= len(self._groups.popleft()[1])

    def take(self, size: int) -> list[bytes]:
        """Take the leaves that continue a tree of ``size`` leaves without a gap, in order.

        Leaves the tree already has are dropped; a group after a gap stays, for when the
        notary has read what is missing from the log.
        """
        leaves: list[bytes] = []
        while self._groups:
            first, group = self._groups[0]
            end = size + len(leaves)  # leaves known so far; the next is position end + 1
            if first > end + 1:
                break
            self._groups.popleft()
            self._count -= len(group)
            leaves += group[end + 1 - first :]
        return leaves

    def clear(self) -> None:
        """Forget every leaf kept."""
        self._groups.clear()
        self._count = 0
