"""The wiring every entry point shares: the database, the group committer, the workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from events.migrate import migrate
from events.planning import Row
from events.writer import GroupCommitter
from projections import projector
from service.database import create_pool, database_url
from service.notary import Notary
from service.notifications import APPENDED_CHANNEL, Listener
from service.replicas import Replicas
from service.settings import Settings
from service.signing import Signer
from service.subscriptions import Hub
from service.webhooks.dispatcher import Dispatcher
from service.webhooks.registry import WEBHOOKS_CHANNEL
from service.webhooks.targets import Resolver

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Database:
    """Where the database is, and a pool of connections to it."""

    url: str
    pool: asyncpg.Pool


@asynccontextmanager
async def database(settings: Settings, *, pool_size: int | None = None) -> AsyncIterator[Database]:
    """Find the database (starting the embedded one if need be), migrate it, open a pool."""
    url = await asyncio.to_thread(database_url, settings)
    conn = await asyncpg.connect(url)
    try:
        applied = await migrate(conn)
    finally:
        await conn.close()
    if applied:
        log.info("applied migrations: %s", ", ".join(applied))
    pool = await create_pool(url, pool_size or settings.pool_size, settings.request_timeout_seconds)
    try:
        yield Database(url, pool)
    finally:
        await _close(pool)


POOL_CLOSE_SECONDS = 5.0  # how long a stopping process waits for its connections to come back


async def _close(pool: asyncpg.Pool) -> None:
    """Close the pool gracefully, or, past the bound, at once: a process told to stop stops."""
    try:
        await asyncio.wait_for(pool.close(), POOL_CLOSE_SECONDS)
    except TimeoutError:
        log.warning("connections still in use %g s after stopping: closed", POOL_CLOSE_SECONDS)
        pool.terminate()


@asynccontextmanager
async def standbys(db: Database, settings: Settings) -> AsyncIterator[Replicas]:
    """Route reads over the standbys in ``LEDGER_READ_REPLICA_URLS`` (none: the primary)."""
    replicas = Replicas(
        db.pool,
        settings.read_replica_urls,
        settings.replica_max_lag_seconds,
        settings.request_timeout_seconds,
    )
    await replicas.start()
    try:
        yield replicas
    finally:
        await replicas.stop()


@asynccontextmanager
async def subscription_hub(
    db: Database, settings: Settings, on_cut: Callable[[], None] | None = None
) -> AsyncIterator[Hub]:
    """Follow the log for every live subscriber (subscribe it to the listener before it starts)."""
    hub = Hub(db.pool, settings.max_subscribers, settings.subscriber_buffer_events, on_cut)
    await hub.start()
    try:
        yield hub
    finally:
        await hub.stop()


@asynccontextmanager
async def group_committer(
    pool: asyncpg.Pool, settings: Settings, committed: Sequence[Callable[[list[Row]], None]] = ()
) -> AsyncIterator[GroupCommitter]:
    """Run the append task; on the way out, commit and answer every queued append.

    ``committed`` are told the rows of every group once it is committed.
    """
    committer = GroupCommitter(
        pool,
        max_queue=settings.append_queue_limit,
        answer_within=settings.request_timeout_seconds,
        committed=committed,
    )
    committer.start()
    try:
        yield committer
    finally:
        await committer.stop()


@asynccontextmanager
async def workers(
    db: Database,
    settings: Settings,
    resolver: Resolver,
    subscribers: Iterable[Callable[[Listener], None]] = (),
    signer: Signer | None = None,
    committed: list[Callable[[list[Row]], None]] | None = None,
) -> AsyncIterator[list[asyncio.Task[None]]]:
    """Run the projector, a webhook dispatcher and (given a signer) the notary.

    ``subscribers`` subscribe to the listener too, before it starts listening. The notary
    adds itself to ``committed``, to be handed what this process's group committer commits.
    """
    listener = Listener(db.url)
    for subscribe in subscribers:
        subscribe(listener)
    tasks = [
        start_projector(db.pool, listener),
        start_dispatcher(db, listener, settings, resolver),
    ]
    if signer is not None and settings.notary:
        tasks.append(start_notary(db.url, listener, signer, settings, committed))
    listener.start()
    try:
        yield tasks
    finally:
        for task in tasks:
            await stop_task(task)
        await listener.stop()


def start_projector(pool: asyncpg.Pool, listener: Listener) -> asyncio.Task[None]:
    """Run the projector in the background, woken by every append's NOTIFY."""
    wake = asyncio.Event()
    listener.subscribe(APPENDED_CHANNEL, lambda _: wake.set())
    listener.on_connect(wake.set)  # notifications may have been missed: look now
    return asyncio.create_task(projector.run(pool, wake), name="ledger-projector")


def start_dispatcher(
    db: Database, listener: Listener, settings: Settings, resolver: Resolver
) -> asyncio.Task[None]:
    """Run a webhook dispatcher in the background, woken by appends and by queued resends."""
    dispatcher = Dispatcher(db.pool, settings, resolver, db.url)
    listener.subscribe(APPENDED_CHANNEL, lambda _: dispatcher.appended())
    listener.subscribe(WEBHOOKS_CHANNEL, lambda _: dispatcher.wake())
    listener.on_connect(dispatcher.wake)
    return asyncio.create_task(dispatcher.run(), name="ledger-webhooks")


def start_notary(
    url: str,
    listener: Listener,
    signer: Signer,
    settings: Settings,
    committed: list[Callable[[list[Row]], None]] | None = None,
) -> asyncio.Task[None]:
    """Run the notary (tree and checkpoints) in the background, woken by every append."""
    notary = Notary(url, signer, settings.checkpoint_interval_seconds)
    listener.subscribe(APPENDED_CHANNEL, lambda _: notary.wake())
    listener.on_connect(notary.wake)
    if committed is not None:
        committed.append(notary.committed)
    return asyncio.create_task(notary.run(), name="ledger-notary")


STOP_SECONDS = 5.0  # how long a background task has to wind up once cancelled


async def stop_task(task: asyncio.Task[None]) -> None:
    """Cancel a background task and wait for it to end, at most ``STOP_SECONDS``.

    A task winds up on the way out (the dispatcher records the outcomes of sends under way);
    one whose winding up waits on something that never comes must not keep the process up.
    """
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(asyncio.shield(task), STOP_SECONDS)
    if not task.done():
        log.warning("%s did not stop within %g s; leaving it", task.get_name(), STOP_SECONDS)
