"""Overload of a real server process: a bound on requests in flight (503)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import asyncpg
import httpx

from tests import factories
from tests.support import ServerProcess, make_tokens, unique_id, wait_for


async def test_beyond_the_bound_requests_are_refused_at_once(
    db_url: str, ledger_processes: Callable[..., ServerProcess]
) -> None:
    tokens = await make_tokens(db_url)
    server = ledger_processes(db_url, LEDGER_MAX_CONCURRENT_REQUESTS="2")
    server.start()
    # Another session keeps the log from being written: appends wait, holding their places.
    # (A body still arriving holds none: see tests/system/test_slow_clients.py.)
    lock = await asyncpg.connect(db_url)
    locked = lock.transaction()
    try:
        await locked.start()
        await lock.execute("LOCK TABLE events IN SHARE MODE")  # reads go on, writes wait
        envelope = factories.company_registered(unique_id())
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            held = [
                asyncio.create_task(http.post("/events", json=envelope, headers=tokens.header()))
                for _ in range(2)
            ]

            async def both_held() -> bool:  # /metrics is answered whatever the load
                text = (await http.get("/metrics")).text
                in_progress = 'ledger_http_requests_in_progress{app_name="ledger",method="POST"'
                return any(
                    line.startswith(in_progress) and line.endswith(" 2.0")
                    for line in text.splitlines()
                )

            await wait_for(both_held)
            started = time.monotonic()
            refused = await http.get("/events", headers=tokens.header())
            elapsed = time.monotonic() - started
            health = await http.get("/health")
            await locked.rollback()  # the two go on and are answered
            answers = [(await task).status_code for task in held]
            after = await http.get("/events", headers=tokens.header())
    finally:
        await lock.close()
        server.terminate()
    assert refused.status_code == 503 and elapsed < 1
    assert refused.headers["retry-after"] and refused.json()["title"] == "Service overloaded"
    assert health.status_code == 200
    assert sorted(answers) == [200, 201]  # the same event twice
    assert after.status_code == 200
