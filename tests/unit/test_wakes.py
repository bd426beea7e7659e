"""Waiting to be woken: a wake-up, a time limit, and a cancellation that is never lost."""

from __future__ import annotations

import asyncio

from events.wakes import woken


async def test_it_says_whether_it_was_woken() -> None:
    event = asyncio.Event()
    assert not await woken(event, 0.001)
    event.set()
    assert await woken(event, 10)


async def test_a_loop_cancelled_as_it_is_woken_stops() -> None:
    # the loop every background task runs: woken by each append, until it is cancelled
    event = asyncio.Event()

    async def follow() -> None:
        while True:
            await woken(event, 10)
            event.clear()

    task = asyncio.create_task(follow())
    await asyncio.sleep(0)  # the task now waits for the event
    event.set()
    task.cancel()  # at the same moment
    done, _ = await asyncio.wait({task}, timeout=5)
    assert task in done and task.cancelled(), "the cancellation was swallowed"
