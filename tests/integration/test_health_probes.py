"""Liveness answers while the process serves; readiness only while appends can be taken."""

from __future__ import annotations

import asyncpg

from tests.support import client_for

NOTHING_LISTENS = "postgresql://ledger@127.0.0.1:9/ledger"  # the discard port: refused at once


async def test_a_running_service_is_live_and_ready_without_a_token(db_url: str) -> None:
    async with client_for(db_url) as client:
        # when the probes ask, without a token
        live = await client.get("/health/live")
        ready = await client.get("/health/ready")
    # then
    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "database": "reachable", "append_task": "running"}


async def test_without_its_database_the_service_is_live_but_not_ready(db_url: str) -> None:
    async with client_for(db_url) as client:
        # given a database that no longer answers: a pool towards a port nothing listens on,
        # made in the app's own event loop
        pool = client.app.state.pool
        portal = client.blocking_portal
        client.app.state.pool = portal.call(
            lambda: asyncpg.create_pool(NOTHING_LISTENS, min_size=0)
        )
        try:
            # when
            live = await client.get("/health/live")
            ready = await client.get("/health/ready")
        finally:
            portal.call(client.app.state.pool.close)
            client.app.state.pool = pool
    # then a restart would not help, but no traffic should come
    assert live.status_code == 200
    assert ready.status_code == 503 and ready.headers["retry-after"] == "1"
    assert ready.json()["database"] == "unreachable"


async def test_once_appends_stop_the_service_is_no_longer_ready(db_url: str) -> None:
    async with client_for(db_url) as client:
        # given the append task stopped, as when the service shuts down
        await client.app.state.committer.stop()
        # when
        live = await client.get("/health/live")
        ready = await client.get("/health/ready")
    # then
    assert live.status_code == 200
    assert ready.status_code == 503
    body = ready.json()
    assert body == {"status": "unavailable", "database": "reachable", "append_task": "stopped"}
