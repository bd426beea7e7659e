"""Loading bench_queries.py's log through the group-commit writer, and what the loaded log holds."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Iterator
from typing import Any

from harness.cpu import CpuGroups, CpuMeter, this_process
from harness.database import connected, create_pool
from harness.report import stderr_console
from query_data import Figure, LogPlan, _Slot


def batches(plan: LogPlan, batch: int) -> Iterator[list[Any]]:
    """The plan's envelopes, prepared for the writer ``batch`` at a time, in recording order."""
    import msgspec

    from events.decoding import decode_append_body
    from events.records import prepare

    envelopes: list[Any] = []
    slotted: list[_Slot] = []
    checked = 0
    for envelope, slot in plan.events():
        envelopes.append(envelope)
        slotted.append(slot)
        if len(envelopes) < batch:
            continue
        if checked < 3:  # the envelopes pass the service's own strict decoding
            decode_append_body(msgspec.json.encode({"events": envelopes}))
            checked += 1
        prepared = prepare(envelopes, True)
        plan.learn(prepared, slotted)
        envelopes, slotted = [], []
        yield prepared
    if envelopes:
        yield prepare(envelopes, True)


def progress_bar(total: int) -> tuple[Any, Any]:
    """A progress bar for the load, on stderr; return it and its task."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("loading the log"),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} events/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=stderr_console(),
    )
    return progress, progress.add_task("load", total=total, rate="-")


class Loader:
    """Appends through a GroupCommitter with at most ``concurrency`` appends in flight."""

    def __init__(self, committer: Any, concurrency: int, progress: Any, bar: Any) -> None:
        self.committer = committer
        self.slots = asyncio.Semaphore(concurrency)
        self.failures: collections.Counter[str] = collections.Counter()
        self.first_failure = ""
        self.appended = 0
        self.pending: set[asyncio.Task[None]] = set()
        self.progress, self.bar = progress, bar
        self.began = time.perf_counter()

    async def send(self, prepared: list[Any]) -> None:
        from events.errors import LedgerError

        try:
            outcome = await self.committer.append(prepared, is_batch=True)
            self.appended += len(outcome.receipts)
        except LedgerError as exc:
            self.failures[type(exc).__name__] += len(prepared)
            self.first_failure = self.first_failure or f"{type(exc).__name__}: {exc}"
        finally:
            self.slots.release()
            rate = self.appended / max(time.perf_counter() - self.began, 1e-9)
            self.progress.update(self.bar, completed=self.appended, rate=f"{rate:,.0f}")

    async def submit(self, prepared: list[Any]) -> None:
        """Send once a slot is free, without waiting for the commit."""
        await self.slots.acquire()
        task = asyncio.create_task(self.send(prepared))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)
        await asyncio.sleep(0)  # let the writer plan while batches are being made

    async def finish(self) -> None:
        await asyncio.gather(*self.pending)

    def cancel(self) -> None:
        for task in self.pending:
            task.cancel()


async def load(
    url: str, plan: LogPlan, batch: int, concurrency: int, cpu: CpuGroups
) -> tuple[Figure, dict[str, Any]]:
    """Append the whole plan through the GroupCommitter; return the figure and the facts."""
    from events.writer import GroupCommitter

    pool = await create_pool(url, 4, command_timeout=600)
    committer = GroupCommitter(pool, max_queue=concurrency + 10, answer_within=600)
    committer.start()
    progress, bar = progress_bar(plan.total)
    meter = CpuMeter({**cpu, "client": this_process})
    loader = Loader(committer, concurrency, progress, bar)
    try:
        with progress, meter:
            loader.began = began = time.perf_counter()
            for prepared in batches(plan, batch):
                await loader.submit(prepared)
            await loader.finish()
            await committer.stop()
            elapsed = time.perf_counter() - began
    finally:
        loader.cancel()
        with contextlib.suppress(Exception):
            await committer.stop()
        await pool.close()
    return load_figure(loader, batch, concurrency, elapsed, meter.percent), {
        "groups": committer.groups_committed
    }


def load_figure(
    loader: Loader, batch: int, concurrency: int, elapsed: float, cpu: dict[str, float]
) -> Figure:
    groups, appended = loader.committer.groups_committed, loader.appended
    figure = Figure(
        "load",
        f"GroupCommitter, {batch} events/append, {concurrency} appends in flight",
        appended / elapsed,
        "events/s",
        count=appended,
        seconds=elapsed,
        failures=dict(loader.failures),
        cpu=cpu,
        note=f"{groups:,} commit groups ({appended / max(groups, 1):,.0f} events/group)",
    )
    if loader.first_failure:
        figure.note += f"; first refusal: {loader.first_failure[:300]}"
    return figure


async def after_load(url: str) -> dict[str, Any]:
    """ANALYZE the log; return its size, its head and what the server is set to."""
    async with connected(url) as conn:
        began = time.perf_counter()
        await conn.execute("ANALYZE events")
        analyzed = time.perf_counter() - began
        return {
            "analyze_seconds": analyzed,
            "rows": await conn.fetchval("SELECT count(*) FROM events"),
            "head": await conn.fetchval("SELECT position FROM ledger_head"),
            "streams": await conn.fetchval("SELECT count(*) FROM events WHERE stream_version = 1"),
            "table_size": await conn.fetchval("SELECT pg_size_pretty(pg_table_size('events'))"),
            "index_size": await conn.fetchval("SELECT pg_size_pretty(pg_indexes_size('events'))"),
            "shared_buffers": await conn.fetchval("SHOW shared_buffers"),
            "version": await conn.fetchval("SHOW server_version"),
        }
