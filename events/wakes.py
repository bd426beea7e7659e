"""Waiting to be woken, with a time limit, without losing a cancellation.

Every background loop (the projector, the webhook dispatcher, the notary, the subscription hub)
sleeps until an append wakes it or a poll interval passes. ``asyncio.wait_for`` cannot be used
for that before Python 3.12: when the wake-up and the task's cancellation arrive at the same
moment it returns the wake-up and swallows the cancellation, and a loop woken by every append
then never stops (a process told to stop hangs). ``asyncio.timeout`` keeps the cancellation.
"""

from __future__ import annotations

import asyncio


async def woken(event: asyncio.Event, seconds: float) -> bool:
    """Wait until ``event`` is set or ``seconds`` pass; say whether it was set."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
