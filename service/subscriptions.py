"""Subscriptions: catch up from the log in pages, then follow it live, as Server-Sent Events.

One task per process (the hub) follows the log for every live subscriber: it is woken by the
append notifications of the process's one LISTEN connection, reads what was appended once, on
one pooled connection, encodes each event once, and hands the frames to every subscriber's
bounded buffer. No subscriber holds a database connection while it waits.

The hand-over from catch-up to live has no gap and no repeat. A subscriber first catches up
alone (the bulk of the log, from a standby when there is one). It then joins the hub, which
answers with the position ``H`` after which the hub will hand it every event; the subscriber
reads ``(last sent, H]`` from the primary, then takes its buffer, skipping whatever it already
sent (positions only grow, so "already sent" is "not after the last id sent").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import asyncpg
import msgspec

from events.log import Connection, head_position, read_after
from events.records import RecordedEvent
from events.wakes import woken
from service.notifications import APPENDED_CHANNEL, Listener

log = logging.getLogger(__name__)

PAGE = 1000  # events per read of the log, and at most per frame batch written
POLL_SECONDS = 5.0  # the hub also looks without a notification (NOTIFY can be lost)
Page = list[RecordedEvent]
Read = Callable[[Callable[[Connection], Awaitable[Page]]], Awaitable[Page]]


@dataclass(frozen=True, slots=True)
class Frame:
    """One event as an SSE message, encoded once for every subscriber."""

    position: int
    type: str
    stream: str
    data: bytes


def frame(event: RecordedEvent) -> Frame:
    """Encode an event as the SSE message whose id is its position."""
    body = b"id: %d\r\ndata: %s\r\n\r\n" % (event.position, msgspec.json.encode(event))
    return Frame(event.position, event.type, event.stream, body)


def comment(text: str) -> bytes:
    """An SSE comment: clients ignore it; proxies see the connection is alive."""
    return b": %s\r\n\r\n" % text.encode()


@dataclass(eq=False)
class Subscriber:
    """One live subscriber's filter and bounded buffer of frames the hub handed it."""

    types: frozenset[str] | None
    stream: str | None
    limit: int
    buffer: deque[Frame] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    cut: bool = False
    release: weakref.finalize | None = None  # type: ignore[type-arg]

    def wants(self, f: Frame) -> bool:
        """Whether the frame passes this subscriber's filters."""
        return (self.types is None or f.type in self.types) and (
            self.stream is None or f.stream == self.stream
        )

    def offer(self, frames: Sequence[Frame]) -> bool:
        """Buffer the frames it wants; False (and cut off) when the buffer would overflow."""
        wanted = [f for f in frames if self.wants(f)]
        if not wanted:
            return True
        if len(self.buffer) + len(wanted) > self.limit:
            self.cut = True
            self.buffer.clear()  # it will never be sent: free it now
        else:
            self.buffer.extend(wanted)
        self.wake.set()
        return not self.cut


class TooManySubscribersError(Exception):
    """Every subscription slot is taken."""


class Hub:
    """Follows the log once for every live subscriber of this process."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        max_subscribers: int,
        buffer_events: int,
        on_cut: Callable[[], None] | None = None,
    ) -> None:
        self.pool = pool
        self.max_subscribers = max_subscribers
        self.buffer_events = buffer_events
        self.position = 0  # the hub hands live subscribers every event after it
        self.slots = 0  # subscriptions open (catching up or live)
        self._on_cut = on_cut
        self._live: set[Subscriber] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def listen(self, listener: Listener) -> None:
        """Be woken by every append, and whenever notifications may have been missed."""
        listener.subscribe(APPENDED_CHANNEL, lambda _: self.wake())
        listener.on_connect(self.wake)

    def wake(self) -> None:
        """Look for new events now (an append was notified, or notifications were lost)."""
        self._wake.set()

    async def start(self) -> None:
        """Start following from the head."""
        async with self.pool.acquire() as conn:
            self.position = await head_position(conn)
        self._task = asyncio.create_task(self._run(), name="ledger-subscriptions")

    async def stop(self) -> None:
        """Stop following; live subscribers are told to reconnect."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for subscriber in self._live:
            subscriber.cut = True
            subscriber.wake.set()

    def subscriber(self, types: Sequence[str] | None, stream: str | None) -> Subscriber:
        """Take a subscription slot for a new subscriber, or raise TooManySubscribersError."""
        if self.slots >= self.max_subscribers:
            raise TooManySubscribersError(f"{self.slots} subscriptions are open, the most allowed")
        self.slots += 1
        subscriber = Subscriber(frozenset(types) if types else None, stream, self.buffer_events)
        # The slot is given back when the subscription ends, and also if its response never
        # started (the client left at once): then nothing but the collector sees it go.
        subscriber.release = weakref.finalize(subscriber, self._free_slot)
        return subscriber

    def _free_slot(self) -> None:
        self.slots -= 1

    def release(self, subscriber: Subscriber) -> None:
        """Give the slot back and stop handing the subscriber frames."""
        self._live.discard(subscriber)
        if subscriber.release is not None:
            subscriber.release()

    def join(self, subscriber: Subscriber) -> int:
        """Hand ``subscriber`` every event after the returned position, from now on."""
        self._live.add(subscriber)
        return self.position

    @property
    def live(self) -> int:
        """How many subscribers follow the log live."""
        return len(self._live)

    async def _run(self) -> None:
        while True:
            await woken(self._wake, POLL_SECONDS)
            self._wake.clear()
            try:
                await self._follow()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("subscriptions cannot read the log (%s); retrying", exc)
                await asyncio.sleep(1.0)
                self._wake.set()

    async def _follow(self) -> None:
        async with self.pool.acquire() as conn:
            if not self._live:  # nobody to hand events to: only keep up with the head
                self.position = max(self.position, await head_position(conn))
                return
            while True:
                events = await read_after(conn, self.position, PAGE)
                if not events:
                    return
                self._hand([frame(e) for e in events])
                self.position = events[-1].position
                if len(events) < PAGE:
                    return

    def _hand(self, frames: list[Frame]) -> None:
        for subscriber in list(self._live):
            if not subscriber.offer(frames):
                self._live.discard(subscriber)
                if self._on_cut is not None:
                    self._on_cut()


async def follow(
    hub: Hub,
    read: Read,
    subscriber: Subscriber,
    after: int,
    heartbeat_seconds: float,
) -> AsyncIterator[bytes]:
    """Yield SSE frames: every matching event after ``after``, caught up then live."""
    types = sorted(subscriber.types) if subscriber.types is not None else None
    stream, last = subscriber.stream, after
    try:
        while True:  # catch up alone, wherever reads go
            page = await read(partial(_page, after=last, types=types, stream=stream))
            if page:
                last = page[-1].position
                yield b"".join(frame(e).data for e in page)
            if len(page) < PAGE:
                break
        joined = hub.join(subscriber)
        while last < joined:  # what the hub had passed when this subscriber joined
            async with hub.pool.acquire() as conn:
                page = await read_after(conn, last, PAGE, types, stream)
            page = [e for e in page if e.position <= joined]
            if not page:
                break
            last = page[-1].position
            yield b"".join(frame(e).data for e in page)
        async for chunk in _live(subscriber, last, heartbeat_seconds):
            yield chunk
    finally:
        hub.release(subscriber)


async def _page(
    conn: Connection, *, after: int, types: list[str] | None, stream: str | None
) -> Page:
    return await read_after(conn, after, PAGE, types, stream)


async def _live(
    subscriber: Subscriber, last: int, heartbeat_seconds: float
) -> AsyncIterator[bytes]:
    while True:
        if subscriber.cut:
            yield comment(
                f"disconnected: this subscriber fell more than {subscriber.limit} events behind;"
                f" reconnect with Last-Event-ID: {last} to resume"
            )
            return
        if subscriber.buffer:
            taken = [subscriber.buffer.popleft() for _ in range(min(PAGE, len(subscriber.buffer)))]
            fresh = [f for f in taken if f.position > last]
            if fresh:
                last = fresh[-1].position
                yield b"".join(f.data for f in fresh)
            continue
        subscriber.wake.clear()
        if not await woken(subscriber.wake, heartbeat_seconds):
            yield comment("nothing new")
