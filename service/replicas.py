"""Reads spread over hot standbys: which database answers, and how far behind each one is.

A standby is PostgreSQL's own streaming replica of the primary, so it holds the same log and
the same read models, only later. Its head (``ledger_head`` as replayed) says exactly which
events an answer from it can reflect, and every answer carries that ``position``: a client that
needs its own write passes ``min_position`` and is answered by a standby that has replayed it,
after a bounded wait, or told to retry (503). Reads are idempotent, so one that fails because a
standby went away mid-query is asked again of the next database, and the client sees no error.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import asyncpg

from events.errors import LedgerError
from events.log import Connection, committed_for, head_position
from service.database import create_pool

log = logging.getLogger(__name__)

T = TypeVar("T")
PRIMARY = "primary"
CHECK_SECONDS = 0.5  # how often each standby's replayed head is read
CHECK_TIMEOUT_SECONDS = 2.0
MIN_POSITION_WAIT_SECONDS = 2.0  # the longest a read waits for a standby to replay its position
STANDBY_POOL_SIZE = 10

# Errors that say the database went away (or cancelled a read for replay), not that the read
# was wrong: the read is asked again elsewhere.
GONE = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.CannotConnectNowError,
    asyncpg.SerializationError,  # "canceling statement due to conflict with recovery"
)

served_by: contextvars.ContextVar[str | None] = contextvars.ContextVar("served_by", default=None)


class StandbyBehindError(LedgerError):
    """No standby has replayed the position asked for within the wait."""

    status = 503
    title = "Not replayed yet"


@dataclass
class Standby:
    """One standby: its pool (None until it could be reached) and what the last check saw."""

    name: str
    url: str
    pool: asyncpg.Pool | None = None
    up: bool = False
    head: int = 0
    lag_events: int = 0
    lag_seconds: float = 0.0


class Replicas:
    """Chooses the database each read goes to: a healthy standby in turn, else the primary."""

    def __init__(
        self,
        primary: asyncpg.Pool,
        urls: Sequence[str] = (),
        max_lag_seconds: float = 5.0,
        command_timeout: float = 10.0,
    ) -> None:
        self.primary = primary
        self.standbys = [Standby(f"replica-{i}", url) for i, url in enumerate(urls, 1)]
        self.max_lag_seconds = max_lag_seconds
        self.primary_up = True
        self._timeout = command_timeout
        self._turn = itertools.count()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Check the standbys now, then keep checking them in the background."""
        if not self.standbys:
            return
        await self.check()
        self._task = asyncio.create_task(self._watch(), name="ledger-replicas")

    async def stop(self) -> None:
        """Stop checking and close the standbys' pools."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for standby in self.standbys:
            if standby.pool is not None:
                await standby.pool.close()

    def healthy(self) -> list[Standby]:
        """The standbys reads may go to now, in this read's round-robin order."""
        usable = [
            s
            for s in self.standbys
            if s.up and (not self.primary_up or s.lag_seconds <= self.max_lag_seconds)
        ]
        if len(usable) > 1:
            start = next(self._turn) % len(usable)
            usable = usable[start:] + usable[:start]
        return usable

    async def read(self, min_position: int | None, work: Callable[[Connection], Awaitable[T]]) -> T:
        """Run the read ``work`` on a standby that holds ``min_position``, else on the primary."""
        candidates = self.healthy()
        if min_position is not None and candidates and self.primary_up:
            ahead = [s for s in candidates if s.head >= min_position]
            candidates = ahead or candidates[:1]  # none has replayed it yet: wait on one
        for standby in candidates:
            assert standby.pool is not None
            try:
                async with standby.pool.acquire(timeout=CHECK_TIMEOUT_SECONDS) as conn:
                    if min_position is not None:
                        await self._replayed(conn, standby, min_position)
                    answer = await work(conn)
            except GONE as exc:
                log.warning("%s failed a read (%s); asking the next database", standby.name, exc)
                standby.up = False
                continue
            served_by.set(standby.name)
            return answer
        async with self.primary.acquire() as conn:
            answer = await work(conn)
        served_by.set(PRIMARY)
        return answer

    async def _replayed(self, conn: Connection, standby: Standby, min_position: int) -> None:
        """Wait (bounded) until the standby has replayed ``min_position``, or refuse."""
        deadline = time.monotonic() + MIN_POSITION_WAIT_SECONDS
        while (head := await head_position(conn)) < min_position:
            if time.monotonic() >= deadline:
                raise StandbyBehindError(
                    f"the standby {standby.name} has replayed the log up to position {head}, "
                    f"not yet {min_position}; retry shortly"
                )
            await asyncio.sleep(0.01)
        standby.head = max(standby.head, head)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            try:
                await self.check()
            except Exception:  # the watch must outlive any one bad check
                log.exception("checking the standbys failed")

    async def check(self) -> None:
        """Read the primary's head and each standby's replayed head and lag."""
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                async with self.primary.acquire() as conn:
                    primary_head = await head_position(conn)
            self.primary_up = True
        except GONE:
            self.primary_up, primary_head = False, None
        await asyncio.gather(*(self._check(s, primary_head) for s in self.standbys))

    async def _check(self, standby: Standby, primary_head: int | None) -> None:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                if standby.pool is None:
                    standby.pool = await create_pool(standby.url, STANDBY_POOL_SIZE, self._timeout)
                async with standby.pool.acquire() as conn:
                    standby.head = await head_position(conn)
                standby.lag_events, standby.lag_seconds = 0, 0.0
                if primary_head is not None and primary_head > standby.head:
                    standby.lag_events = primary_head - standby.head
                    standby.lag_seconds = await self._waiting(standby.head + 1)
            if not standby.up:
                log.info("%s is answering reads (head %s)", standby.name, standby.head)
            standby.up = True
        except GONE as exc:
            if standby.up:
                log.warning("%s is unreachable (%s); reads go elsewhere", standby.name, exc)
            standby.up = False

    async def _waiting(self, position: int) -> float:
        """How long the event at ``position`` has been committed on the primary."""
        async with self.primary.acquire() as conn:
            return await committed_for(conn, position)
