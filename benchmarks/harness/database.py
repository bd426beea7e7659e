"""The run's PostgreSQL and fresh database; the one place benchmarks reach the storage code.

Every import of the ledger's own storage modules (migrations, keys, the pool) is in this file,
so a move of one of them is one line to change here.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import shutil
import sys
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit


def with_database(url: str, name: str) -> str:
    """Return ``url`` pointing at database ``name``."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def describe() -> str:
    """Say where the run's PostgreSQL comes from."""
    return "DATABASE_URL" if os.environ.get("DATABASE_URL") else "embedded (pgserver)"


class Database:
    """The PostgreSQL of the run and the fresh database created in it, dropped by close()."""

    def __init__(self) -> None:
        self.admin_url = ""
        self.url = ""
        self.name = f"ledger_bench_{uuid.uuid4().hex[:12]}"
        self.embedded: Any = None
        self.tempdir: str | None = None
        self.created = False

    def start(self) -> None:
        if os.environ.get("DATABASE_URL"):
            self.admin_url = os.environ["DATABASE_URL"]
        else:
            with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
                warnings.simplefilter("ignore")
                pgserver: Any = importlib.import_module("pgserver")
            self.tempdir = tempfile.mkdtemp(prefix="ledger-bench-pg-")
            self.embedded = pgserver.get_server(self.tempdir, cleanup_mode="stop")
            self.admin_url = self.embedded.get_uri()
        self.url = with_database(self.admin_url, self.name)
        asyncio.run(self._execute(f'CREATE DATABASE "{self.name}"'))
        self.created = True

    async def _execute(self, sql: str) -> None:
        async with connected(self.admin_url) as conn:
            await conn.execute(sql)

    def close(self) -> None:
        if self.created:
            try:
                asyncio.run(self._execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
                self.created = False
            except Exception as exc:  # cleanup goes on
                print(f"warning: could not drop database {self.name}: {exc}", file=sys.stderr)
        if self.embedded is not None:
            with contextlib.suppress(Exception):
                self.embedded.cleanup()
            self.embedded = None
        if self.tempdir is not None:
            shutil.rmtree(self.tempdir, ignore_errors=True)
            self.tempdir = None


@contextlib.asynccontextmanager
async def connected(url: str) -> AsyncIterator[Any]:
    """One asyncpg connection to ``url``, closed afterwards."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        yield conn
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def connected_many(url: str, n: int) -> AsyncIterator[list[Any]]:
    """``n`` asyncpg connections to ``url``, closed afterwards."""
    import asyncpg

    conns = [await asyncpg.connect(url) for _ in range(n)]
    try:
        yield conns
    finally:
        for conn in conns:
            await conn.close()


async def migrate(url: str) -> str:
    """Apply the ledger's migrations; return the server's version."""
    from events.migrate import migrate as apply_migrations

    async with connected(url) as conn:
        await apply_migrations(conn)
        return str(await conn.fetchval("SHOW server_version"))


async def create_token(url: str, name: str, scopes: list[str]) -> str:
    """Create an API key with ``scopes``; return its token."""
    from service.keys import create_key

    async with connected(url) as conn:
        _, token = await create_key(conn, name, scopes)
    return token


async def create_pool(url: str, size: int, command_timeout: float) -> Any:
    """The service's own connection pool (its settings included)."""
    from service.database import create_pool as service_pool

    return await service_pool(url, size, command_timeout=command_timeout)


async def postmaster_pid(url: str) -> int | None:
    """Return the postmaster's pid when the server runs on this machine, else None."""
    from harness.cpu import parent_pid

    async with connected(url) as conn:
        return parent_pid(int(await conn.fetchval("SELECT pg_backend_pid()")))


# The figures below are the benchmark's own measurements of the table, read straight from it.


async def analyze(url: str) -> None:
    """Gather the planner's statistics on the log (the server's cached plans are then redone)."""
    async with connected(url) as conn:
        await conn.execute("ANALYZE events")


async def head_position(url: str) -> int:
    """Return the position of the last event in the ledger's log."""
    async with connected(url) as conn:
        return int(await conn.fetchval("SELECT coalesce(max(position), 0) FROM events"))


async def groups_since(url: str, after: int) -> tuple[int, int]:
    """Return (events, commit groups) appended after ``after``: a group shares one recorded_at."""
    async with connected(url) as conn:
        row = await conn.fetchrow(
            "SELECT count(*), count(DISTINCT recorded_at) FROM events WHERE position > $1", after
        )
    assert row is not None
    return int(row[0]), int(row[1])
