"""The projector: read models kept by tailing the log, stopped by what it cannot apply, rebuilt."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import msgspec

from events.decoding import decode_append_body
from events.records import prepare
from events.writer import GroupCommitter
from projections import projector
from tests import factories as f
from tests.support import (
    ServerProcess,
    Tokens,
    caught_up,
    client_for,
    read_models,
    rebuild,
    unique_id,
    wait_for,
)


async def test_rebuild_equals_the_incrementally_kept_read_models(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        # given rounds, corrections and retractions kept by the running projector
        for _ in range(3):
            company = unique_id()
            await client.post(
                "/events", json=f.company_registered(company), headers=tokens.header()
            )
            round_ = f.round_announced(company)
            await client.post("/events", json=round_, headers=tokens.header())
            replacement = {**round_["data"], "investors": [{"investor_id": "meituan"}]}
            fix = f.corrected(round_["event_id"], replacement)
            await client.post("/events", json=fix, headers=tokens.header())
            await client.post("/events", json=f.retracted(fix["event_id"]), headers=tokens.header())

        async def done() -> bool:
            return await caught_up(db_url)

        await wait_for(done)
    incremental = await read_models(db_url)
    # when the read models are rebuilt from scratch
    replayed = await rebuild(db_url)
    # then they are the same rows, and the checkpoint is the head
    assert replayed == 12
    assert await read_models(db_url) == incremental
    assert len(incremental["rm_investor_companies"]) == 9  # alibaba, tencent, meituan x 3
    assert await caught_up(db_url)


async def test_an_event_it_cannot_apply_stops_the_projector_there(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        company = unique_id()
        good = await client.post(
            "/events", json=f.company_registered(company), headers=tokens.header()
        )
        # given an event whose payload the projector cannot read, written behind the API's back
        conn = await asyncpg.connect(db_url)
        try:
            await conn.execute(
                """INSERT INTO events (position, event_id, stream, stream_version, type,
                       effective_date, recorded_at, source, data, hash)
                   VALUES (2, gen_random_uuid(), $1, 2, 'round_announced', '2023-01-01', now(),
                           '{}', '{"investors": 5}', '\\x00')""",
                f"company:{company}",
            )
            await conn.execute("UPDATE ledger_head SET position = 2")
            await conn.execute("SELECT pg_notify('ledger_events', '2')")
        finally:
            await conn.close()

        # when the projector meets it, then it stops before it and says why
        async def stopped() -> bool:
            health = (await client.get("/health")).json()
            return health["projections"]["read_models"]["error"] is not None

        await wait_for(stopped)
        health = (await client.get("/health")).json()["projections"]["read_models"]
        assert health["position"] == good.json()["position"]
        assert health["lag"] == 1
        assert "cannot apply events 2" in health["error"]


async def test_rebuild_under_concurrent_appends_and_queries(
    db_url: str, tokens: Tokens, artifacts: Path
) -> None:
    server = ServerProcess(db_url, artifacts / "rebuild-under-load.log")
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


async def test_ledger_worker_keeps_the_read_models_alone(db_url: str) -> None:
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
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.cli",
        "worker",
        env={**os.environ, "DATABASE_URL": db_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:

        async def done() -> bool:
            return await caught_up(db_url)

        await wait_for(done, within=20)
    finally:
        worker.terminate()
        output = (await asyncio.wait_for(worker.communicate(), 20))[0]
    # then it caught up by itself and stopped cleanly when told to
    assert worker.returncode == 0, output
    kept = await read_models(db_url)
    assert [row[:2] for row in kept["rm_investor_companies"]] == [
        ("alibaba", company),
        ("tencent", company),
    ]


async def test_the_projector_goes_on_once_a_rebuild_clears_its_error(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        # given a projector stopped by an error recorded against it
        conn = await asyncpg.connect(db_url)
        try:
            await conn.execute(
                "UPDATE projection_checkpoints SET error = 'stopped for the test' WHERE name = $1",
                projector.NAME,
            )
        finally:
            await conn.close()
        company = unique_id()
        receipt = (
            await client.post(
                "/events", json=f.company_registered(company), headers=tokens.header()
            )
        ).json()
        health = (await client.get("/health")).json()["projections"]["read_models"]
        assert health["error"] == "stopped for the test"
        # when the read models are rebuilt, then the running projector carries on by itself
        await rebuild(db_url)
        later = f.company_registered(unique_id())
        last = (await client.post("/events", json=later, headers=tokens.header())).json()

        async def done() -> bool:
            return await caught_up(db_url)

        await wait_for(done)
        assert last["position"] == receipt["position"] + 1
        page = (
            await client.get(
                "/companies", params={"min_position": last["position"]}, headers=tokens.header()
            )
        ).json()
        assert {c["company_id"] for c in page["companies"]} == {
            company,
            later["data"]["company_id"],
        }
