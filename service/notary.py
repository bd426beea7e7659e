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
from service.signing import Signer

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0
FRESH_LIMIT = 200_000  # leaf hashes handed over and kept between rounds, at most


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
        # Leaf hashes of events committed by this process: (position of the first, hashes).
        self._fresh: deque[tuple[int, list[bytes]]] = deque()
        self._fresh_count = 0

    def wake(self) -> None:
        """Look at the log now (an append was committed)."""
        self._wake.set()

    def committed(self, rows: list[Row]) -> None:
        """Take the rows this process just committed, in position order, to hash their leaves."""
        if not self._serving:
            return
        leaves = [leaf_hash(row.canonical) for row in rows if row.canonical is not None]
        if len(leaves) != len(rows):
            return
        self._fresh.append((rows[0].position, leaves))
        self._fresh_count += len(leaves)
        while self._fresh_count > FRESH_LIMIT:
            self._fresh_count -= len(self._fresh.popleft()[1])

    def _fresh_leaves(self, size: int) -> list[bytes]:
        """Take the handed-over leaf hashes that continue a tree of ``size`` leaves."""
        leaves: list[bytes] = []
        while self._fresh:
            first, hashes = self._fresh[0]
            end = size + len(leaves)  # leaves known so far; the next is position end + 1
            if first > end + 1:
                break  # events appended by another process come first: read from the log
            self._fresh.popleft()
            self._fresh_count -= len(hashes)
            leaves += hashes[end + 1 - first :]
        return leaves

    async def run(self) -> None:
        """Work whenever this process holds the lock; retry after database trouble."""
        while True:
            try:
                conn = await asyncpg.connect(self.url)
                try:
                    if await tree.try_lock_signer(conn):
                        await self._serve(conn)
                finally:
                    await conn.close()
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
                fresh = self._fresh_leaves(border.size)
                if fresh:
                    await tree.grow(conn, border, fresh)
                if head > border.size:
                    await tree.extend(conn, border, head)
                await self._sign(conn, border)
                # At most one checkpoint per interval: appends during the pause wait for it.
                await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))
                await self._pause(self.interval)
        finally:
            self._serving = False
            self._fresh.clear()
            self._fresh_count = 0
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
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
