"""The projector: read models kept by tailing the log, stopped by what it cannot apply, rebuilt."""

from __future__ import annotations

from projections import projector
from tests import factories as f
from tests.support import (
    Tokens,
    caught_up,
    client_for,
    connected,
    read_models,
    rebuild,
    unique_id,
    wait_for,
)


async def test_rebuild_equals_the_incrementally_kept_read_models(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        # given rounds reported twice, ranked, corrected and retracted, kept by the projector
        for _ in range(3):
            company = unique_id()
            await client.post(
                "/events", json=f.company_registered(company), headers=tokens.header()
            )
            round_ = f.round_announced(company)
            await client.post("/events", json=round_, headers=tokens.header())
            again = f.round_announced(company, source={"name": "Report 001"})
            again["data"] = {**again["data"], "investors": [{"investor_id": "ant-group"}]}
            await client.post("/events", json=again, headers=tokens.header())
            rank = f.retracted(again["event_id"], type="report_ranked")
            rank["data"] = {**rank["data"], "rank": "preferred"}
            await client.post("/events", json=rank, headers=tokens.header())
            replacement = {**round_["data"], "investors": [{"investor_id": "meituan"}]}
            fix = f.corrected(round_["event_id"], replacement)
            await client.post("/events", json=fix, headers=tokens.header())
            await client.post("/events", json=f.retracted(fix["event_id"]), headers=tokens.header())

        async def done() -> bool:
            return await caught_up(db_url)

        await wait_for(done)
        portfolio = await client.get("/investors/ant-group/portfolio", headers=tokens.header())
    incremental = await read_models(db_url)
    # when the read models are rebuilt from scratch
    replayed = await rebuild(db_url)
    # then they are the same rows, and the checkpoint is the head
    assert replayed == 18
    assert await read_models(db_url) == incremental
    assert len(incremental["rm_investor_companies"]) == 12  # alibaba, tencent, meituan, ant x 3
    assert await caught_up(db_url)
    # and the answers read through them are the same: each company once, with its report
    async with client_for(db_url) as client:
        rebuilt = await client.get("/investors/ant-group/portfolio", headers=tokens.header())
    assert rebuilt.json()["companies"] == portfolio.json()["companies"]
    assert [len(c["sources"]) for c in portfolio.json()["companies"]] == [1, 1, 1]


async def test_an_event_it_cannot_apply_stops_the_projector_there(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        company = unique_id()
        good = await client.post(
            "/events", json=f.company_registered(company), headers=tokens.header()
        )

        async def applied() -> bool:
            health = (await client.get("/health")).json()
            return bool(health["projections"]["read_models"]["position"] == 1)

        await wait_for(applied)  # the good event is applied on its own, before the bad one
        # given an event whose payload the projector cannot read, written behind the API's back
        async with connected(db_url) as conn:
            await conn.execute(
                """INSERT INTO events (position, event_id, stream, stream_version, type,
                       effective_date, recorded_at, source, data, hash)
                   VALUES (2, gen_random_uuid(), $1, 2, 'round_announced', '2023-01-01', now(),
                           '{}', '{"investors": 5}', '\\x00')""",
                f"company:{company}",
            )
            await conn.execute("UPDATE ledger_head SET position = 2")
            await conn.execute("SELECT pg_notify('ledger_events', '2')")

        # when the projector meets it, then it stops before it and says why
        async def stopped() -> bool:
            health = (await client.get("/health")).json()
            return health["projections"]["read_models"]["error"] is not None

        await wait_for(stopped)
        health = (await client.get("/health")).json()["projections"]["read_models"]
        assert health["position"] == good.json()["position"]
        assert health["lag"] == 1
        assert "cannot apply events 2" in health["error"]


async def test_the_projector_goes_on_once_a_rebuild_clears_its_error(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        # given a projector stopped by an error recorded against it
        async with connected(db_url) as conn:
            await conn.execute(
                "UPDATE projection_checkpoints SET error = 'stopped for the test' WHERE name = $1",
                projector.NAME,
            )
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
