"""The group-commit writer when its database connections are cut in the middle of a burst."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx

from events.integrity import verify_store
from tests import factories as f
from tests.support import ServerProcess, Tokens, unique_id, wait_for


async def test_cut_connections_lose_no_acknowledged_event(
    db_url: str, tokens: Tokens, ledger_processes: Callable[..., ServerProcess]
) -> None:
    server = ledger_processes(db_url)
    server.start()
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        # given a burst of appends from 16 writers over a few streams
        companies = [unique_id() for _ in range(4)]
        acknowledged: dict[str, dict[str, Any]] = {}
        statuses: list[int] = []
        stop = asyncio.Event()

        async def writer(n: int) -> None:
            i = 0
            while not stop.is_set():
                envelope = f.valuation_reported(companies[(n + i) % 4], str(1000 + i))
                response = await client.post(
                    "/events", json=envelope, headers=tokens.header("write")
                )
                statuses.append(response.status_code)
                if response.status_code == 503:
                    problem = response.json()
                    # refused before reaching the log (e.g. the key lookup), or naming the ids
                    # to retry to learn whether they went in
                    assert problem.get("event_ids", [envelope["event_id"]]) == [
                        envelope["event_id"]
                    ], problem
                if response.status_code == 201:
                    acknowledged[envelope["event_id"]] = response.json()
                i += 1

        async def acknowledged_more(count: int) -> None:
            target = len(acknowledged) + count

            async def reached() -> bool:
                return len(acknowledged) >= target

            await wait_for(reached, within=30)

        tasks = [asyncio.create_task(writer(n)) for n in range(16)]
        admin = await asyncpg.connect(db_url)
        try:
            # when every other connection to the database is cut, three times over
            for _ in range(3):
                await acknowledged_more(50)
                await admin.execute(
                    """SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                       WHERE datname = current_database() AND pid <> pg_backend_pid()"""
                )
            await acknowledged_more(50)  # and the writer recovers by itself
            stop.set()
            await asyncio.gather(*tasks)
            # then the answers were successes or 503s, never anything else
            assert set(statuses) <= {201, 503}, sorted(set(statuses))
            # and every acknowledged event is stored where its receipt says, the chain intact
            rows = await admin.fetch("SELECT event_id::text, position, hash FROM events")
            stored = {r["event_id"]: (r["position"], bytes(r["hash"]).hex()) for r in rows}
            for event_id, receipt in acknowledged.items():
                assert stored.get(event_id) == (receipt["position"], receipt["hash"]), event_id
            assert sorted(p for p, _ in stored.values()) == list(range(1, len(stored) + 1))
            assert (await verify_store(admin)).intact
        finally:
            stop.set()
            await admin.close()
            server.terminate()
