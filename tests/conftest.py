"""Fixtures: one PostgreSQL per session (embedded, or DATABASE_URL), a fresh database per test."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from events.migrate import migrate
from tests.support import (
    TEMPLATE,
    ServerProcess,
    Tokens,
    cloned_database,
    free_port,
    make_tokens,
    with_database,
)


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
        yield server.get_uri()
        server.cleanup()


@pytest.fixture(scope="session")
async def template_url(server_url: str) -> AsyncIterator[str]:
    """Migrate once into a template database that each test clones."""
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {TEMPLATE}")
    finally:
        await conn.close()
    url = with_database(server_url, TEMPLATE)
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    yield url


@pytest.fixture
async def db_url(server_url: str, template_url: str) -> AsyncIterator[str]:
    """Return the URL of a fresh, migrated database of this test's own."""
    async with cloned_database(server_url) as url:
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
def demo(tmp_path: Path, artifacts: Path) -> Iterator[str]:
    """Run ``ledger serve --demo`` (its own fresh embedded database) and yield its address."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.pop("DATABASE_URL", None)
    env["LEDGER_PORT"] = str(port)
    log = (artifacts / "explorer-demo.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--demo"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=log,
    )
    ServerProcess.running.add(process)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
        assert process.poll() is None, (artifacts / "explorer-demo.log").read_text()
    else:
        raise AssertionError("the demo did not start")
    yield base
    process.terminate()
    process.wait(timeout=30)
