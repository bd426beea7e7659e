"""A dispatcher's identity: an advisory lock it holds, on a connection of its own, while it lives.

Leases record their owner's id. PostgreSQL releases a session's advisory locks when the
session ends, and a process that dies (even by ``kill -9``) closes its connections: so a lease
whose owner's lock is free belongs to a dispatcher that is gone, and may be taken back at once.
While the owner lives its lock is held and its leases are left alone; the lease's end remains
the bound only for an owner that hangs.
"""

from __future__ import annotations

import logging

import asyncpg

log = logging.getLogger(__name__)

# The first key of every dispatcher's lock (the second is its id); any constant works as long
# as every process uses the same one.
OWNER_LOCK_CLASS = 0x5EB400


class Owner:
    """This process's dispatcher id, and the connection that holds its lock."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn: asyncpg.Connection | None = None
        self.id: int | None = None

    async def hold(self) -> int:
        """Return the id, (re)taking the lock first if its connection is gone.

        After a lost connection the same id is taken again if it is free, so that leases this
        dispatcher still has in flight stay its own; raises what connecting raises.
        """
        if self._conn is not None and not self._conn.is_closed():
            assert self.id is not None
            return self.id
        conn = await asyncpg.connect(self._url)
        try:
            self.id = await self._take(conn)
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        return self.id

    async def _take(self, conn: asyncpg.Connection) -> int:
        if self.id is not None and await _try_lock(conn, self.id):
            return self.id
        if self.id is not None:
            log.warning("webhook dispatcher %d lost its lock; its leases may be resent", self.id)
        while True:  # the sequence cycles: an id still held by a live dispatcher is skipped
            candidate = int(await conn.fetchval("SELECT nextval('webhook_dispatcher_ids')"))
            if await _try_lock(conn, candidate):
                return candidate

    async def release(self) -> None:
        """Close the connection, which frees the lock."""
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


async def _try_lock(conn: asyncpg.Connection, owner: int) -> bool:
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", OWNER_LOCK_CLASS, owner))
