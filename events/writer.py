"""Group commit: one task per process drains the append queue into groups, two in flight.

Serialised appends (events/commit.py) cap one-event transactions at a few thousand per second,
because every transaction waits for the previous one's commit. So requests do not open
transactions themselves: they queue their prepared events, and a single task takes everything
queued so far, plans each request on its own (a conflict fails only that request) and writes
all accepted events in one statement. Nothing is acknowledged before its commit returns.

Two groups are in flight at once: while one group's write waits for its commit to reach the
disk, the next group is read, planned on top of it (``GroupState.stack_on``) and sent on a
second connection, where PostgreSQL holds it on the head row until the first commits. A
group is answered only after the group before it is final, and when the group it was stacked
on did not commit as planned, it is planned again under the lock. So speculation never shows:
every answer describes what is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import asyncpg

from events import commit
from events.errors import LedgerError, OverloadedError, StoreUnavailableError
from events.planning import GroupState, Outcome, Row, plan_request
from events.records import PreparedEvent

log = logging.getLogger(__name__)

MAX_GROUP_BYTES = 32 * 1024 * 1024  # keeps one statement's arrays far below PostgreSQL's limits


@dataclass(slots=True)
class _Request:
    events: list[PreparedEvent]
    is_batch: bool
    future: asyncio.Future[Outcome] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass(slots=True)
class _Flight:
    """A planned group on its way to the database."""

    group: list[_Request]
    state: GroupState
    outcomes: list[Outcome | LedgerError]
    seen: tuple[int, bytes]
    stacked: bool
    turn: int
    conn: asyncpg.pool.PoolConnectionProxy
    done: asyncio.Task[bool] | None = None


class GroupCommitter:
    """Accept appends from any task; commit them in groups from one task."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        max_group_events: int = 5000,
        max_queue: int = 10_000,
        answer_within: float = 10.0,
        committed: Sequence[Callable[[list[Row]], None]] = (),
    ) -> None:
        self._pool = pool
        self._committed = committed  # told the rows of each group once it is committed
        self._answer_within = answer_within
        self._conns: list[asyncpg.pool.PoolConnectionProxy | None] = [None, None]
        self._max_group_events = max_group_events
        self._queue: asyncio.Queue[_Request | None] = asyncio.Queue(max_queue)
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.groups_committed = 0

    def start(self) -> None:
        """Start the append task."""
        self._closing = False
        self._task = asyncio.create_task(self._run(), name="ledger-group-commit")
        self._task.add_done_callback(self._ended)

    async def stop(self) -> None:
        """Commit everything already queued, then end the task."""
        if self._task is None:
            return
        self._closing = True
        await self._queue.put(None)
        with contextlib.suppress(Exception):
            await self._task
        self._task = None

    @property
    def alive(self) -> bool:
        """Say whether appends are being taken (the append task is running)."""
        return self._task is not None and not self._task.done() and not self._closing

    def _ended(self, task: asyncio.Task[None]) -> None:
        """Answer whatever is still queued once the append task has ended, however it ended."""
        if not task.cancelled() and task.exception() is not None:
            log.error("the append task failed", exc_info=task.exception())
        self._closing = True
        while not self._queue.empty():
            request = self._queue.get_nowait()
            if request is not None:
                self._answer([request], [_unavailable(request, RuntimeError("append task ended"))])

    @property
    def queued(self) -> int:
        """Return how many requests wait for the next group."""
        return self._queue.qsize()

    async def append(self, events: list[PreparedEvent], is_batch: bool = False) -> Outcome:
        """Queue one request and wait for its outcome; raise its LedgerError if refused."""
        if not self.alive:
            raise StoreUnavailableError("the ledger is not taking appends now; retry shortly")
        request = _Request(events, is_batch)
        try:
            self._queue.put_nowait(request)
        except asyncio.QueueFull:
            raise OverloadedError("too many appends are waiting; retry shortly") from None
        # A database that hangs makes the writer's statements time out (the pool's command
        # timeout), but a request can wait for earlier groups' timeouts, and for cancellations,
        # first: so its wait is bounded too. Its future is then cancelled and the writer skips
        # it; whether its events were committed, a retry with their ids tells. (A timer that
        # answers the future, rather than wait_for, which costs a future and a task wake-up
        # more per request.)
        timer = asyncio.get_running_loop().call_later(self._answer_within, self._late, request)
        try:
            return await request.future
        finally:
            timer.cancel()

    def _late(self, request: _Request) -> None:
        if not request.future.done():
            late = TimeoutError(f"no commit within {self._answer_within:g} s")
            request.future.set_exception(_unavailable(request, late))

    async def _run(self) -> None:
        previous: _Flight | None = None
        before_previous: _Flight | None = None
        while True:
            first = await self._queue.get()
            if first is None:
                break
            # The group before the previous one must be final: its connection is the one this
            # group will use. If it did not hold, the previous group (stacked on it) will not
            # either: wait for that one too, rather than stack on it, so a miss cannot cascade.
            if not await _held(before_previous):
                await _held(previous)
            # Only now is the group taken: what was queued during that wait goes with it, so
            # groups grow as requests wait, and none waits longer than it did.
            group = self._take(first)
            try:
                flight = await self._plan(group, previous)
            except Exception as exc:  # a fault of ours: fail this group, keep taking appends
                log.exception("planning a group failed")
                self._fail(group, exc)
                continue
            if flight is None:
                continue
            flight.done = asyncio.create_task(self._finish(flight, previous))
            before_previous, previous = previous, flight
        await _held(previous)
        for i in range(len(self._conns)):
            await self._release(i)

    def _take(self, first: _Request) -> list[_Request]:
        group, count, size = [first], len(first.events), _size(first)
        while count < self._max_group_events and size < MAX_GROUP_BYTES and not self._queue.empty():
            item = self._queue.get_nowait()
            if item is None:
                self._queue.put_nowait(None)  # stop after this group
                break
            group.append(item)
            count, size = count + len(item.events), size + _size(item)
        return group

    async def _plan(self, group: list[_Request], previous: _Flight | None) -> _Flight | None:
        """Read and plan a group, stacked on ``previous`` while that one is not final."""
        turn = 1 - previous.turn if previous is not None else 0  # not the one still writing
        # Decided before reading: a predecessor that finishes while we read may or may not be
        # in the snapshot, and stacking on it is right in both cases (see GroupState.stack_on).
        stacked = previous is not None and previous.done is not None and not previous.done.done()
        try:
            conn = await self._connection(turn)
            events = [e for r in group for e in r.events]
            ids = {e.event_id for e in events if e.client_chose_id}
            ids.update(e.target_event_id for e in events if e.target_event_id is not None)
            streams = {e.stream for e in events if e.stream is not None}
            state = await commit.snapshot(conn, ids, streams)
        except Exception as exc:
            self._fail(group, exc)
            await self._release(turn)
            return None
        if stacked:
            assert previous is not None
            state.stack_on(previous.state)
        seen = state.head
        outcomes: list[Outcome | LedgerError] = [
            plan_request(r.events, r.is_batch, state) for r in group
        ]
        return _Flight(group, state, outcomes, seen, stacked, turn, conn)

    async def _finish(self, flight: _Flight, previous: _Flight | None) -> bool:
        """Write a planned group, wait for its predecessor, then answer; say if the plan held."""
        try:
            return await self._write_and_answer(flight, previous)
        except Exception as exc:  # the database failed: this group's outcome is unknown
            self._fail(flight.group, exc)
            await self._release(flight.turn)
            return False

    async def _write_and_answer(self, flight: _Flight, previous: _Flight | None) -> bool:
        state = flight.state
        written: bool | Exception = True
        if state.rows:
            try:
                written = await commit.write_if_unchanged(flight.conn, state, flight.seen)
            except Exception as exc:
                written = exc
        # Answers go out in group order, so a group that repeats its predecessor's events is
        # never acknowledged before that predecessor is.
        held_before = await _held(previous)
        if isinstance(written, Exception):
            raise written
        if not written and flight.stacked and held_before:
            # Our write can reach the head row before the predecessor's does, and then finds
            # the head not yet where it was planned; now that the predecessor is in, try again.
            written = await commit.write_if_unchanged(flight.conn, state, flight.seen)
        # A conditional write that took place proves the head was exactly the one planned on
        # (the hash covers the whole chain), so the plan was right. With nothing to write, the
        # plan was right unless it was stacked on a predecessor that did not hold.
        if written if state.rows else (held_before or not flight.stacked):
            self._record(flight)
            return True
        # Planned on a head that did not hold: plan again, now under the lock.
        flight.outcomes = await self._plan_locked(flight)
        self._record(flight)
        return False

    async def _plan_locked(self, flight: _Flight) -> list[Outcome | LedgerError]:
        events = [e for r in flight.group for e in r.events]
        ids = {e.event_id for e in events if e.client_chose_id}
        ids.update(e.target_event_id for e in events if e.target_event_id is not None)
        streams = {e.stream for e in events if e.stream is not None}
        conn = flight.conn
        async with conn.transaction():
            state = await commit.lock_head(conn)
            await commit.load(conn, ids, streams, state)
            outcomes = [plan_request(r.events, r.is_batch, state) for r in flight.group]
            if state.rows:
                await commit.write_rows(conn, state)
        flight.state = state
        return outcomes

    def _record(self, flight: _Flight) -> None:
        self.groups_committed += 1
        self._answer(flight.group, flight.outcomes)
        if flight.state.rows:
            for tell in self._committed:
                try:
                    tell(flight.state.rows)
                except Exception:  # the group is committed and answered whatever a listener does
                    log.exception("a listener of committed groups failed")

    @staticmethod
    def _answer(group: list[_Request], outcomes: list[Outcome | LedgerError]) -> None:
        for request, outcome in zip(group, outcomes, strict=True):
            if request.future.done():  # the caller went away; its events stand if committed
                continue
            if isinstance(outcome, LedgerError):
                request.future.set_exception(outcome)
            else:
                request.future.set_result(outcome)

    def _fail(self, group: list[_Request], exc: Exception) -> None:
        self._answer(group, [_unavailable(request, exc) for request in group])

    async def _connection(self, turn: int) -> asyncpg.pool.PoolConnectionProxy:
        """Return one of the writer's two connections, held across groups."""
        conn = self._conns[turn]
        if conn is not None:
            try:
                if not conn.is_closed():
                    return conn
            except asyncpg.InterfaceError:  # the pool took it back when it was cut
                pass
            await self._release(turn)
        conn = await self._pool.acquire(timeout=self._answer_within)
        self._conns[turn] = conn
        return conn

    async def _release(self, turn: int) -> None:
        """Give a connection back to the pool; one that cannot be reset is closed instead."""
        conn, self._conns[turn] = self._conns[turn], None
        if conn is None:
            return
        try:
            await self._pool.release(conn, timeout=self._answer_within)
        except Exception as exc:
            log.warning("closing a writer connection that could not be released: %s", exc)
            with contextlib.suppress(Exception):
                conn.terminate()


def _size(request: _Request) -> int:
    return sum(len(e.data) + len(e.source) + len(e.metadata or "") for e in request.events)


async def _held(flight: _Flight | None) -> bool:
    """Wait for a flight to be final; say whether it committed exactly as planned."""
    if flight is None or flight.done is None:
        return True
    try:
        return await flight.done
    except Exception:
        return False


def _unavailable(request: _Request, exc: BaseException) -> StoreUnavailableError:
    log.warning("append failed: %s", exc)
    # The client needs the ids to find out, by retrying them, whether the events went in.
    return StoreUnavailableError(
        f"the append could not be confirmed ({type(exc).__name__}); it may or may not have been "
        "committed: retry with the same event_ids to learn which",
        extra={"event_ids": [str(e.event_id) for e in request.events]},
    )
