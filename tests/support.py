"""Helpers shared by the tests: databases cloned from a migrated template, keys, servers."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient

from projections import projector
from service.app import create_app
from service.http.limits import RateLimiter
from service.keys import SCOPES, create_key
from service.settings import Settings
from service.webhooks.targets import Resolver

# One template per xdist worker, so that workers sharing a DATABASE_URL server keep apart.
TEMPLATE = f"ledger_template_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


def with_database(url: str, name: str) -> str:
    """Return ``url`` pointing at database ``name``."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


@asynccontextmanager
async def connected(url: str) -> AsyncIterator[asyncpg.Connection]:
    """Connect to the database at ``url`` for the block; the connection is closed after it."""
    conn = await asyncpg.connect(url)
    try:
        yield conn
    finally:
        await conn.close()


@asynccontextmanager
async def cloned_database(server_url: str, prefix: str = "test") -> AsyncIterator[str]:
    """Create a database cloned from the migrated template; drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    async with connected(server_url) as conn:
        await conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    try:
        yield with_database(server_url, name)
    finally:
        async with connected(server_url) as conn:
            await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def unique_id(prefix: str = "co") -> str:
    """Return a slug no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass
class Tokens:
    """One token per scope, plus one with every scope."""

    write: str
    read: str
    webhooks: str
    admin: str
    audit: str
    all: str

    def header(self, which: str = "all") -> dict[str, str]:
        """Return the Authorization header for one of the tokens."""
        return {"Authorization": f"Bearer {getattr(self, which)}"}


async def make_tokens(url: str) -> Tokens:
    """Create a key per scope in the database at ``url``."""
    async with connected(url) as conn:
        made = [(await create_key(conn, scope, [scope]))[1] for scope in SCOPES]
        everything = (await create_key(conn, "all", list(SCOPES)))[1]
    return Tokens(*made, everything)


# Building the app costs about a tenth of a second (Litestar parses every handler's signature),
# more than most tests take, and the databases tests are lent are reused: so a test asking for
# the settings a test before it asked for gets the same app, started afresh. Its lifespan builds
# every piece of its state anew; the rate limiter's buckets, kept outside it, are replaced.
_apps: dict[Settings, Litestar] = {}


def _app_for(settings: Settings, resolver: Resolver | None) -> Litestar:
    if resolver is not None:  # a test's own resolver: its own app
        return create_app(settings, resolver)
    app = _apps.get(settings)
    if app is None:
        app = _apps[settings] = create_app(settings)
    else:
        app.state.rate_limiter = RateLimiter(settings.rate_limit, settings.rate_burst)
    return app


@asynccontextmanager
async def client_for(
    url: str, resolver: Resolver | None = None, **settings: Any
) -> AsyncIterator[AsyncTestClient[Any]]:
    """Run the app in-process against ``url`` and yield a test client."""
    app = _app_for(Settings(database_url=url, **settings), resolver)
    async with AsyncTestClient(app=app, timeout=30) as client:
        yield client


async def append(client: AsyncTestClient[Any], tokens: Tokens, envelope: dict[str, Any]) -> Any:
    """Append ``envelope`` (one event or a batch) with the write token; return the receipt."""
    response = await client.post("/events", json=envelope, headers=tokens.header("write"))
    assert response.status_code == 201, response.text
    return response.json()


async def count_events(url: str) -> int:
    """Return how many events the database at ``url`` holds."""
    async with connected(url) as conn:
        return int(await conn.fetchval("SELECT count(*) FROM events"))


def free_port() -> int:
    """Return a TCP port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``ledger serve`` or ``ledger worker`` as a real process (crashes, concurrency, the demo).

    Tests build them with the ``ledger_processes`` fixture, which kills any left running.
    """

    running: ClassVar[set[subprocess.Popen[bytes]]] = set()  # killed at the end of the session

    @classmethod
    def kill_all(cls) -> None:
        """Kill every server a test left running (say, one whose test failed half-way)."""
        for process in cls.running:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        cls.running.clear()

    def __init__(
        self,
        url: str | None,
        log_path: Path,
        env: dict[str, str] | None = None,
        command: str = "serve",
        args: tuple[str, ...] = (),
        cwd: Path | None = None,
    ) -> None:
        self.url = url
        self.env = env or {}
        self.command = command
        self.args = args
        self.cwd = cwd
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def _environment(self) -> dict[str, str]:
        if self.url is None:  # its own embedded database: nothing of the caller's settings
            env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
            env.pop("DATABASE_URL", None)
        else:
            env = {**os.environ, "DATABASE_URL": self.url}
        return {**env, "LEDGER_PORT": str(self.port), "LEDGER_LOG_LEVEL": "warning", **self.env}

    def start(self, within: float = 30) -> None:
        """Start the process; for ``serve``, wait until /health answers."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", self.command, *self.args],
            env=self._environment(),
            cwd=self.cwd,
            stdout=log,
            stderr=log,
        )
        ServerProcess.running.add(self.process)
        if self.command != "serve":  # a worker has no HTTP to wait for
            return
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            try:  # wait a moment on the process itself: it either keeps starting or exits
                code = self.process.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                continue
            raise AssertionError(f"server exited with {code}: {self.log_path.read_text()}")
        raise AssertionError(f"server did not start: {self.log_path.read_text()}")

    def is_running(self) -> bool:
        """Return whether the process was started and has not ended."""
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """Kill the server with SIGKILL, as a crash would."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self) -> int:
        """Stop the server with SIGTERM and return its exit code."""
        assert self.process is not None
        self.process.terminate()
        return self.process.wait(timeout=30)


async def wait_for(predicate: Any, within: float = 10.0) -> None:
    """Wait until an async predicate is true, polling briefly."""
    deadline = time.monotonic() + within
    while not await predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def ledger(
    db_url: str | None, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    if db_url is not None:
        env["DATABASE_URL"] = db_url
    else:
        env.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


async def read_models(url: str) -> dict[str, list[tuple[Any, ...]]]:
    async with connected(url) as conn:
        return {
            table: [tuple(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY 1, 2")]
            for table in projector.TABLES
        }


async def caught_up(url: str) -> bool:
    async with connected(url) as conn:
        head = await conn.fetchval("SELECT position FROM ledger_head")
        return bool((await projector.status(conn)).position == head)


async def rebuild(url: str) -> int:
    async with connected(url) as conn:
        return await projector.rebuild(conn, chunk=7)
