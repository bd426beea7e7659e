"""Bulk import: lines decoded in worker processes, each group of batches COPYed in one go.

``ledger import`` of a large file is bound by Python, not by PostgreSQL: a line costs far more
to decode and validate than to store. So the work is split where it can be. Worker processes
decode and validate the lines and encode each envelope canonically, each line independent of
the others (events/bulk_decoding.py); this process plans them in file order and chains their
hashes (events/bulk_planning.py), and writes a group of ``GROUP_BATCHES`` batches by binary
COPY in one transaction, while the workers decode the groups after it.

The guarantees are the group-commit writer's. A group is planned on a snapshot of the log (its
head, the events the group names, the versions of its streams), stacked on the group before it
when that one is still being written, then written in a transaction that locks the head row:
if the head is still the one planned on, the plan was current (the hash covers the whole
chain); if the service appended in between, the group is planned again under the lock. Appends
from the service wait on the head row meanwhile, so they fall between groups, never inside one.
A group is written only once the group before it is, so the log receives the file in order.
A batch is all or nothing: planning stops at the first batch with a refused line, the batches
before it are written, and its error names the line. Each event carries its ``event_id``, so
an import that was killed appends, when run again, only what is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass

import asyncpg

from events import commit
from events.bulk_decoding import Batch, collection_paused, decoded_groups, read_chunks
from events.bulk_planning import BulkPlan, names, plan_group
from events.errors import StoreUnavailableError
from events.log import Connection
from events.transfer import IMPORT_BATCH, ImportReport, ImportUnconfirmedError


class _AbandonedError(Exception):
    """The group before this one did not go in whole, so this one must not go in."""


@dataclass
class _Flight:
    """A planned group on its way to the log; its task returns the plan it was written with."""

    batches: list[Batch]
    plan: BulkPlan
    task: asyncio.Task[BulkPlan]

    @property
    def whole(self) -> bool:
        """Say whether the plan took every batch (the next group may be stacked on it)."""
        return self.plan.refusal is None and self.plan.batches == len(self.batches)


async def import_groups(
    conns: tuple[Connection, Connection],
    lines: Iterable[bytes],
    progress: Callable[[int], None] | None = None,
    pool: Executor | None = None,
    batch_size: int = IMPORT_BATCH,
) -> ImportReport:
    """Append every line's envelope, a group of batches per transaction; stop at a bad line.

    Two connections: while a group is written on one, the next is read and planned on the other.
    """
    report = ImportReport()
    flights: deque[_Flight] = deque()  # planned whole, not yet landed: one at most
    turn = 0
    try:
        async for decoded in decoded_groups(read_chunks(lines, batch_size), pool):
            batches = decoded.unpacked()
            while batches:
                flight = await _launch(conns[turn], batches, flights[-1] if flights else None)
                turn = 1 - turn
                if flights:
                    await _land(flights.popleft(), report, progress)
                if flight.whole:
                    flights.append(flight)
                    break
                # Cut short (or refused): where it ended is known once it is written.
                batches = batches[(await _land(flight, report, progress)).batches :]
            if decoded.refusal is not None:
                while flights:
                    await _land(flights.popleft(), report, progress)
                raise decoded.refusal
        while flights:
            await _land(flights.popleft(), report, progress)
    finally:
        for flight in flights:  # the import is stopping: a group still in flight rolls back
            flight.task.cancel()
            with contextlib.suppress(BaseException):
                await flight.task
    return report


async def _launch(conn: Connection, batches: list[Batch], previous: _Flight | None) -> _Flight:
    """Plan batches on a snapshot (stacked on ``previous``), and start writing them."""
    ids, streams = names(batches)
    state = await commit.snapshot(conn, ids, streams)
    plan = BulkPlan(state)
    if previous is not None:
        plan.stack_on(previous.plan)
    with collection_paused():
        for numbers, events in batches:
            if not plan.add(numbers, events):
                break
            await asyncio.sleep(0)  # the group before streams its COPY meanwhile
    return _Flight(batches, plan, asyncio.create_task(_write(conn, batches, plan, previous)))


async def _write(
    conn: Connection, batches: list[Batch], plan: BulkPlan, previous: _Flight | None
) -> BulkPlan:
    """Write a planned group once the group before it is in; return the plan written."""
    if previous is not None:
        before = await previous.task
        if before.refusal is not None or before.batches != previous.plan.batches:
            raise _AbandonedError
    async with conn.transaction():
        head = await commit.lock_head(conn)
        if head.head != plan.seen:  # the service appended since the snapshot
            ids, streams = names(batches)
            await commit.load(conn, ids, streams, head)
            with collection_paused():
                plan = plan_group(batches, head)
        rows = plan.state.rows
        if rows:
            await commit.copy_rows(conn, rows, plan.state.recorded_at)
            await commit.move_head(conn, rows[-1], plan.state.recorded_at)
    return plan


async def _land(
    flight: _Flight, report: ImportReport, progress: Callable[[int], None] | None
) -> BulkPlan:
    """Wait for a group to be written; count it; raise the refusal it stopped at, if any."""
    try:
        plan = await flight.task
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        error = StoreUnavailableError(
            f"the database did not confirm the group of lines from here ({type(exc).__name__}: "
            f"{exc})"
        )
        raise ImportUnconfirmedError(flight.batches[0][0][0], error) from exc
    report.appended += len(plan.state.rows)
    report.already_recorded += plan.replayed
    report.lines += plan.lines
    if progress is not None:
        progress(plan.lines)
    if plan.refusal is not None:
        raise plan.refusal
    return plan
