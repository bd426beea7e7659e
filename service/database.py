"""Where the database is: the one in ``DATABASE_URL``, or an embedded PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from events.migrate import migrate
from service.settings import Settings

log = logging.getLogger(__name__)


def database_url(settings: Settings) -> str:
    """Return the database to use, starting the embedded server when none is configured."""
    if settings.database_url:
        return settings.database_url
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pgserver

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # pgserver runs a real PostgreSQL from its wheel (as an unprivileged user when we are root)
    # and keeps it running while any process uses it; the data stays in the directory.
    start: Any = pgserver.get_server  # type: ignore[attr-defined]
    server: Any = start(settings.data_dir.resolve(), cleanup_mode="stop")
    _embedded.append(server)
    url: str = server.get_uri()
    log.info("using the embedded PostgreSQL in %s at %s", settings.data_dir, url)
    return url


_embedded: list[Any] = []  # keeps the embedded server handle alive for the process


async def create_pool(url: str, size: int, command_timeout: float = 30.0) -> asyncpg.Pool:
    """Open a connection pool whose statements give up after ``command_timeout`` seconds."""
    pool = await asyncpg.create_pool(
        url,
        min_size=min(2, size),
        max_size=size,
        command_timeout=command_timeout,
        # The append path relies on READ COMMITTED (events/commit.py): make it explicit in
        # case the server's default isolation is stricter.
        server_settings={"default_transaction_isolation": "read committed"},
        reset=_keep_session,
    )
    assert pool is not None
    return pool


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Return a connection to the pool without asyncpg's reset query.

    asyncpg resets every released connection with a query of its own (unlock advisory locks,
    close cursors, UNLISTEN, RESET ALL): a round trip per request, a tenth of the time of a
    point-in-time answer. Nothing the service runs on a pooled connection leaves such state
    behind: advisory locks, LISTEN and session settings are used only on connections of their
    own (migrations, ``ledger projections rebuild``, service/notifications.py). asyncpg still
    rolls back a transaction left open, and forgets the connection's notification callbacks,
    before calling this.
    """


@asynccontextmanager
async def connect(
    settings: Settings, *, migrated: bool = True
) -> AsyncIterator[asyncpg.Connection]:
    """Open one connection (for the command line), migrating first unless told not to."""
    url = await asyncio.to_thread(database_url, settings)
    conn = await asyncpg.connect(url)
    try:
        if migrated:
            await migrate(conn)
        yield conn
    finally:
        await conn.close()
