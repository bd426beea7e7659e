"""A LISTEN connection that comes back by itself: notifications wake caches and workers.

NOTIFY is lost while the listening connection is down, so whoever listens is told when the
connection is (re)established and must then assume it missed something (a cache clears itself,
a worker polls). Polling or expiry stays the fallback; notifications only make things prompt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

log = logging.getLogger(__name__)

Handler = Callable[[str], None]

APPENDED_CHANNEL = "ledger_events"  # every append notifies it with the new head position


class Listener:
    """Keep one connection listening on some channels, reconnecting with backoff."""

    def __init__(self, url: str, max_backoff: float = 5.0) -> None:
        self._url = url
        self._max_backoff = max_backoff
        self._handlers: dict[str, list[Handler]] = {}
        self._on_connect: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self.connected = asyncio.Event()

    def subscribe(self, channel: str, handler: Handler) -> None:
        """Call ``handler(payload)`` for every notification on ``channel``."""
        self._handlers.setdefault(channel, []).append(handler)

    def on_connect(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever listening (re)starts: notifications may have been missed."""
        self._on_connect.append(callback)

    def start(self) -> None:
        """Start listening in the background."""
        self._task = asyncio.create_task(self._run(), name="ledger-listener")

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self._url)
                self._lost.clear()
                conn.add_termination_listener(lambda _: self._lost.set())
                for channel in self._handlers:
                    await conn.add_listener(channel, self._dispatch)
                for callback in self._on_connect:
                    callback()
                self.connected.set()
                backoff = 0.1
                await self._lost.wait()
                log.warning("the notification connection was lost; reconnecting")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("cannot listen for notifications (%s); retrying", exc)
            finally:
                self.connected.clear()
                if conn is not None and not conn.is_closed():
                    await conn.close()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)

    def _dispatch(self, _conn: object, _pid: int, channel: str, payload: object) -> None:
        for handler in self._handlers.get(channel, ()):
            handler(str(payload))
