"""Fixtures: one PostgreSQL per session (embedded, or DATABASE_URL), a fresh database per test.

Tests read (and tamper with) the log's tables in SQL of their own, on purpose: they check the
service against what the database holds, never against the service's own reader
(events/log.py), which is what they test.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from events.migrate import migrate
from tests.databases import DatabasePool
from tests.support import (
    TEMPLATE,
    ServerProcess,
    Tokens,
    cloned_database,
    connected,
    make_tokens,
    with_database,
)

TIERS = ("unit", "integration", "system")  # the directories, and the markers they give


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its tier, the directory it is in, so ``-m`` can choose tiers."""
    root = Path(__file__).parent
    for item in items:
        tier = item.path.relative_to(root).parts[0]
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: tests live in tests/{{{','.join(TIERS)}}}/")
        item.add_marker(tier)
        if tier == "system":
            # Processes, kills and outages run one after another, as they always have; the
            # other tiers are spread over the remaining workers (``--dist loadgroup``).
            item.add_marker(pytest.mark.xdist_group("system"))


@pytest.fixture(scope="session", autouse=True)
def no_server_left_behind() -> Iterator[None]:
    """Kill any ``ledger serve`` a test started and did not stop."""
    yield
    ServerProcess.kill_all()


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """Return an admin URL of a real PostgreSQL: DATABASE_URL, or an embedded one."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
    with tempfile.TemporaryDirectory(prefix="ledger-test-pg-") as data_dir:
        server: Any = pgserver.get_server(data_dir, cleanup_mode="stop")
        # No test crashes this server (the outage test stops one of its own), so its flushes to
        # disk buy nothing; without them a test's fresh database costs a tenth of the time.
        server.psql("ALTER SYSTEM SET fsync = off; SELECT pg_reload_conf();")
        yield server.get_uri()
        server.cleanup()


@pytest.fixture(scope="session")
async def template_url(server_url: str) -> AsyncIterator[str]:
    """Migrate once into a template database that each test clones."""
    async with connected(server_url) as conn:
        await conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {TEMPLATE}")
    url = with_database(server_url, TEMPLATE)
    async with connected(url) as conn:
        await migrate(conn)
    yield url


@pytest.fixture(scope="session")
async def databases(server_url: str, template_url: str) -> AsyncIterator[DatabasePool]:
    """Lend fresh databases: clones of the template, or ones set back to it after a test."""
    pool = DatabasePool(server_url, TEMPLATE)
    await pool.learn_template()
    yield pool
    await pool.close()


@pytest.fixture
async def db_url(databases: DatabasePool, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """Return the URL of a fresh, migrated database of this test's own.

    A system test's database is never reused: the processes it started may still be reaching
    for it while it is torn down.
    """
    async with databases.database(reuse=request.node.get_closest_marker("system") is None) as url:
        yield url


@pytest.fixture(scope="module")
async def shared_url(server_url: str, template_url: str) -> AsyncIterator[str]:
    """Return a database shared by one module's tests (for long tables and properties)."""
    async with cloned_database(server_url, "module") as url:
        yield url


@pytest.fixture(scope="module")
async def shared_tokens(shared_url: str) -> Tokens:
    """Return tokens for every scope, valid in the module's shared database."""
    return await make_tokens(shared_url)


@pytest.fixture
async def tokens(db_url: str) -> Tokens:
    """Return tokens for every scope, valid in this test's database."""
    return await make_tokens(db_url)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Return the directory where tests leave logs and screenshots for inspection."""
    path = Path(os.environ.get("LEDGER_TEST_ARTIFACTS", "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def ledger_processes(
    artifacts: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., ServerProcess]]:
    """Build ``ledger serve`` / ``ledger worker`` processes; kill any still running at the end.

    ``make(url, command="serve", *args, cwd=None, **env)`` returns a process not yet started,
    logging to the test's own file in the artifacts. ``url=None`` runs it without the caller's
    database and settings (``ledger serve --demo`` brings its own).
    """
    started: list[ServerProcess] = []

    def make(
        url: str | None, command: str = "serve", *args: str, cwd: Path | None = None, **env: str
    ) -> ServerProcess:
        log = artifacts / f"{request.node.name}-{len(started)}-{command}.log"
        log.unlink(missing_ok=True)  # a log of this run only
        process = ServerProcess(url, log, env=env, command=command, args=args, cwd=cwd)
        started.append(process)
        return process

    yield make
    for process in started:
        if process.is_running():
            process.kill()


@pytest.fixture
def demo(tmp_path: Path, ledger_processes: Callable[..., ServerProcess]) -> Iterator[str]:
    """Run ``ledger serve --demo`` (its own fresh embedded database) and yield its address."""
    process = ledger_processes(None, "serve", "--demo", cwd=tmp_path)
    process.start(within=60)
    yield process.base_url
    process.terminate()
