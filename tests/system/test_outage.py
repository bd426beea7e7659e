"""The database goes away under load for 10 s, then comes back.

A PostgreSQL of this test's own (embedded, in a temporary directory) is stopped with
``pg_ctl stop -m fast`` while appenders and readers keep calling ``ledger serve``. While it is
down every request must answer quickly (within the request timeout) with a 503 problem and
Retry-After, never a 500 and never a hang; once it is back the service recovers by itself, and
every event it acknowledged is stored, with an intact chain.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from events.integrity import verify_store
from events.migrate import migrate
from tests import factories
from tests.support import ServerProcess, connected, make_tokens, unique_id, wait_for

OUTAGE_SECONDS = 10
REQUEST_TIMEOUT = 3.0  # LEDGER_REQUEST_TIMEOUT of the server under test


@pytest.fixture
def own_postgres() -> Iterator[Any]:
    """A PostgreSQL server for this test alone, so that stopping it harms no other test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
    with tempfile.TemporaryDirectory(prefix="ledger-outage-pg-") as data_dir:
        server: Any = pgserver.get_server(data_dir, cleanup_mode="stop")
        yield server
        server.cleanup()


def stop(server: Any) -> None:
    from pgserver._commands import pg_ctl

    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)


@dataclass
class Load:
    """What the clients saw."""

    acknowledged: dict[str, int] = field(default_factory=dict)  # event_id -> position
    statuses: dict[int, int] = field(default_factory=dict)
    bad: list[str] = field(default_factory=list)  # answers that break the rules
    slowest: float = 0.0


async def test_the_database_going_away_costs_nothing_acknowledged(
    own_postgres: Any, ledger_processes: Callable[..., ServerProcess]
) -> None:
    url = own_postgres.get_uri()
    async with connected(url) as conn:
        await migrate(conn)
    tokens = await make_tokens(url)
    server = ledger_processes(url, LEDGER_REQUEST_TIMEOUT=str(REQUEST_TIMEOUT))
    server.start()
    load = Load()
    running = True

    async def client(http: httpx.AsyncClient, appends: bool) -> None:
        company = unique_id()
        first = True
        while running:
            envelope = (
                factories.company_registered(company)
                if first
                else factories.valuation_reported(company)
            )
            started = time.monotonic()
            try:
                if appends:
                    answer = await http.post("/events", json=envelope, headers=tokens.header())
                else:
                    answer = await http.get("/events?after=0&limit=5", headers=tokens.header())
            except httpx.HTTPError as exc:
                load.bad.append(f"no answer: {exc!r}")
                continue
            elapsed = time.monotonic() - started
            load.slowest = max(load.slowest, elapsed)
            load.statuses[answer.status_code] = load.statuses.get(answer.status_code, 0) + 1
            if answer.status_code in (200, 201):
                if appends:
                    load.acknowledged[answer.json()["event_id"]] = answer.json()["position"]
                    first = False
            elif answer.status_code == 503:
                if not answer.headers.get("retry-after"):
                    load.bad.append("503 without Retry-After")
                if not answer.headers["content-type"].startswith("application/problem+json"):
                    load.bad.append(f"503 as {answer.headers['content-type']}")
                await asyncio.sleep(0.05)
            elif not (appends and answer.status_code == 409 and first is False):
                load.bad.append(f"{answer.status_code}: {answer.text[:200]}")
            await asyncio.sleep(0.01)

    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            clients = [asyncio.create_task(client(http, appends=i < 6)) for i in range(8)]
            await wait_for(lambda: _acknowledged(load, 20), within=30)
            before = len(load.acknowledged)
            await asyncio.to_thread(stop, own_postgres)
            await asyncio.sleep(OUTAGE_SECONDS)
            during = dict(load.statuses)
            await asyncio.to_thread(own_postgres.ensure_postgres_running)
            acknowledged_then = len(load.acknowledged)
            await wait_for(lambda: _acknowledged(load, acknowledged_then + 20), within=30)
            running = False
            await asyncio.gather(*clients)
            health = (await http.get("/health")).json()
    finally:
        server.terminate()

    assert before > 0 and during.get(503, 0) > 0
    assert load.bad == []
    assert 500 not in load.statuses
    assert load.slowest < REQUEST_TIMEOUT + 2.5, load.slowest
    assert health["status"] == "ok" and health["database"] == "reachable"
    async with connected(url) as conn:
        stored = {
            str(row["event_id"]): row["position"]
            for row in await conn.fetch("SELECT event_id, position FROM events")
        }
        report = await verify_store(conn)
    missing = {e: p for e, p in load.acknowledged.items() if stored.get(e) != p}
    assert missing == {}
    assert report.intact and report.checked == len(stored)


async def _acknowledged(load: Load, n: int) -> bool:
    return len(load.acknowledged) >= n
