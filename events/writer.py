"""Group commit: one task per process drains the append queue into one transaction at a time.

Serialised appends (events/store.py) cap one-event transactions at a few thousand per second,
because every transaction waits for the previous one's commit. So requests do not open
transactions themselves: they queue their prepared events, and a single task takes everything
queued so far, plans each request on its own (a conflict fails only that request), writes all
accepted events in one INSERT and one commit, and only then answers each caller. Nothing is
acknowledged before its commit returns.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import asyncpg

from events import commit
from events.errors import LedgerError, OverloadedError, StoreUnavailableError
from events.planning import Outcome, plan_request
from events.records import PreparedEvent

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Request:
    events: list[PreparedEvent]
    is_batch: bool
    future: asyncio.Future[Outcome] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass(frozen=True, slots=True)
class GroupStats:
    """How big the last group was; exposed for metrics."""

    requests: int
    events: int


class GroupCommitter:
    """Accept appends from any task; commit them in groups from one task."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        max_group_events: int = 5000,
        max_queue: int = 10_000,
        answer_within: float = 10.0,
    ) -> None:
        self._pool = pool
        self._answer_within = answer_within
        self._conn: asyncpg.pool.PoolConnectionProxy | None = None
        self._max_group_events = max_group_events
        self._queue: asyncio.Queue[_Request | None] = asyncio.Queue(max_queue)
        self._task: asyncio.Task[None] | None = None
        self.groups_committed = 0
        self.last_group = GroupStats(0, 0)

    def start(self) -> None:
        """Start the append task."""
        self._task = asyncio.create_task(self._run(), name="ledger-group-commit")

    async def stop(self) -> None:
        """Commit everything already queued, then end the task."""
        if self._task is None:
            return
        await self._queue.put(None)
        await self._task
        self._task = None

    @property
    def queued(self) -> int:
        """Return how many requests wait for the next group."""
        return self._queue.qsize()

    async def append(self, events: list[PreparedEvent], is_batch: bool = False) -> Outcome:
        """Queue one request and wait for its outcome; raise its LedgerError if refused."""
        if self._task is None:
            raise StoreUnavailableError("the ledger is shutting down; retry shortly")
        request = _Request(events, is_batch)
        try:
            self._queue.put_nowait(request)
        except asyncio.QueueFull:
            raise OverloadedError("too many appends are waiting; retry shortly") from None
        # Every request is answered by the writer: a database that hangs makes its statements
        # time out (the pool's command timeout), which fails the group with a 503.
        return await request.future

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            group, count = [first], len(first.events)
            while count < self._max_group_events and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                group.append(item)
                count += len(item.events)
            await self._commit(group)
        await self._release()

    async def _commit(self, group: list[_Request]) -> None:
        outcomes: list[Outcome | LedgerError]
        try:
            outcomes = await self._commit_group(group)
        except Exception as exc:  # the database failed: nothing in this group was appended
            log.warning("append transaction failed: %s", exc)
            await self._release()
            error = StoreUnavailableError(
                f"the append could not be committed ({type(exc).__name__})"
            )
            outcomes = [error] * len(group)
        for request, outcome in zip(group, outcomes, strict=True):
            if request.future.done():  # the caller went away; its events stand if committed
                continue
            if isinstance(outcome, LedgerError):
                request.future.set_exception(outcome)
            else:
                request.future.set_result(outcome)

    async def _commit_group(self, group: list[_Request]) -> list[Outcome | LedgerError]:
        conn = await self._connection()
        events = [e for r in group for e in r.events]
        ids = {e.event_id for e in events if e.client_chose_id}
        ids.update(e.target_event_id for e in events if e.target_event_id is not None)
        streams = {e.stream for e in events if e.stream is not None}
        # Optimistic: plan against an unlocked snapshot, write if the head has not moved.
        state = await commit.snapshot(conn, ids, streams)
        seen_position = state.position
        outcomes = [plan_request(r.events, r.is_batch, state) for r in group]
        if state.rows and not await commit.write_if_unchanged(conn, state, seen_position):
            # Another process appended in between: plan again holding the head's lock.
            async with conn.transaction():
                state = await commit.lock_head(conn)
                await commit.load(conn, ids, streams, state)
                outcomes = [plan_request(r.events, r.is_batch, state) for r in group]
                if state.rows:
                    await commit.write_rows(conn, state)
        self.groups_committed += 1
        self.last_group = GroupStats(len(group), len(state.rows))
        return outcomes

    async def _connection(self) -> asyncpg.pool.PoolConnectionProxy:
        """Return the writer's own connection, held across groups (no pool wait per group)."""
        if self._conn is None or self._conn.is_closed():
            self._conn = await self._pool.acquire(timeout=self._answer_within)
        return self._conn

    async def _release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await self._pool.release(conn)
