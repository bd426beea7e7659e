"""The read models kept and rebuilt by ``ledger`` processes: a rebuild under load, the worker."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable

import asyncpg
import httpx
import msgspec

from events.decoding import decode_append_body
from events.records import prepare
from events.writer import GroupCommitter
from tests import factories as f
from tests.support import (
    ServerProcess,
    Tokens,
    caught_up,
    read_models,
    rebuild,
    unique_id,
    wait_for,
)


async def test_rebuild_under_concurrent_appends_and_queries(
    db_url: str, tokens: Tokens, ledger_processes: Callable[..., ServerProcess]
) -> None:
    server = ledger_processes(db_url)
    server.start()
    failures: list[str] = []
    stop = asyncio.Event()
    try:
        async with httpx.AsyncClient(
            base_url=server.base_url, headers=tokens.header(), timeout=30
        ) as client:
            companies = [unique_id() for _ in range(20)]
            for company in companies:
                await client.post("/events", json=f.company_registered(company))
            first_round = await client.post("/events", json=f.round_announced(companies[0]))
            seen = first_round.json()["position"]
            known = await client.get("/investors/alibaba/portfolio", params={"min_position": seen})
            assert known.status_code == 200

            async def append() -> None:
                i = 0
                while not stop.is_set():
                    company = companies[i % len(companies)]
                    response = await client.post("/events", json=f.round_announced(company))
                    if response.status_code != 201:
                        failures.append(f"append {response.status_code}")
                    i += 1

            async def query() -> None:
                while not stop.is_set():
                    for path in ("/investors/alibaba/portfolio", "/companies"):
                        response = await client.get(path)
                        if response.status_code != 200:
                            failures.append(f"{path} {response.status_code} {response.text}")

            tasks = [asyncio.create_task(append()) for _ in range(4)]
            tasks += [asyncio.create_task(query()) for _ in range(2)]
            # when the read models are rebuilt meanwhile, by the command line
            env = {**os.environ, "DATABASE_URL": db_url}
            result = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "service.cli", "projections", "rebuild"],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            stop.set()
            await asyncio.gather(*tasks)
            assert result.returncode == 0, result.stderr

            async def done() -> bool:
                return await caught_up(db_url)

            await wait_for(done)
        # then no request failed, and the swapped-in tables miss no event
        assert failures == []
        kept = await read_models(db_url)
        await rebuild(db_url)
        assert await read_models(db_url) == kept
        assert len(kept["rm_companies"]) == 20
    finally:
        stop.set()
        server.terminate()


async def test_ledger_worker_keeps_the_read_models_alone(
    db_url: str, ledger_processes: Callable[..., ServerProcess]
) -> None:
    # given events appended with no server running
    pool = await asyncpg.create_pool(db_url, min_size=3, max_size=3)
    assert pool is not None
    committer = GroupCommitter(pool)
    committer.start()
    company = unique_id()
    for envelope in (f.company_registered(company), f.round_announced(company)):
        envelopes, is_batch = decode_append_body(msgspec.json.encode(envelope))
        await committer.append(prepare(envelopes, is_batch))
    await committer.stop()
    await pool.close()
    # when `ledger worker` runs
    worker = ledger_processes(db_url, "worker")
    worker.start()
    try:

        async def done() -> bool:
            return await caught_up(db_url)

        await wait_for(done, within=20)
    finally:
        returncode = await asyncio.to_thread(worker.terminate)
    # then it caught up by itself and stopped cleanly when told to
    assert returncode == 0, worker.log_path.read_text()
    kept = await read_models(db_url)
    assert [row[:2] for row in kept["rm_investor_companies"]] == [
        ("alibaba", company),
        ("tencent", company),
    ]
