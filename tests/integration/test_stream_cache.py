"""Streams held in memory give the answers a read from scratch gives, and never stale ones."""

from __future__ import annotations

import datetime as dt
import gc
import random
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests import factories as f
from tests.support import Tokens, append, client_for, unique_id

INVESTORS = ["alibaba", "tencent", "meituan", "hongshan"]


async def get(client: AsyncTestClient[Any], tokens: Tokens, path: str, **params: Any) -> Any:
    response = await client.get(path, params=params, headers=tokens.header("read"))
    return response.status_code, response.json()


def instant(receipt: dict[str, Any], shift_us: int = 0) -> str:
    recorded = dt.datetime.fromisoformat(receipt["recorded_at"])
    return (recorded + dt.timedelta(microseconds=shift_us)).isoformat()


async def test_an_append_is_in_the_next_answer_without_min_position(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        # given a company whose stream the service already holds
        company = unique_id()
        await append(client, tokens, f.company_registered(company))
        first = await append(client, tokens, f.valuation_reported(company, "500000000"))
        status, before = await get(client, tokens, f"/companies/{company}", as_of="2024-01-01")
        assert (status, before["valuation"]["value"]) == (200, "500000000")
        # when a later valuation is appended, then retracted
        later = f.valuation_reported(company, "900000000", effective_date="2023-12-01")
        receipt = await append(client, tokens, later)
        _, after = await get(client, tokens, f"/companies/{company}", as_of="2024-01-01")
        retraction = await append(client, tokens, f.retracted(later["event_id"]))
        _, withdrawn = await get(client, tokens, f"/companies/{company}", as_of="2024-01-01")
        # then each answer reflects the log as it was when asked
        assert after["valuation"]["value"] == "900000000"
        assert after["position"] >= receipt["position"] > before["position"]
        assert withdrawn["valuation"]["value"] == "500000000"
        assert withdrawn["valuation"]["event_id"] == first["event_id"]
        assert withdrawn["position"] >= retraction["position"]


async def test_a_past_known_at_ignores_what_the_service_holds_from_later(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        # given a corrected valuation, asked about now (so the correction is held)
        company = unique_id()
        await append(client, tokens, f.company_registered(company))
        original = f.valuation_reported(company, "1000000000")
        await append(client, tokens, original)
        replacement = {**original["data"], "valuation": {"value": "1100000000", "currency": "USD"}}
        fix = await append(client, tokens, f.corrected(original["event_id"], replacement))
        _, now = await get(client, tokens, f"/companies/{company}", as_of="2023-12-31")
        assert now["valuation"]["value"] == "1100000000"
        # when asked as the ledger knew it a microsecond before the correction, and at it
        _, then = await get(
            client,
            tokens,
            f"/companies/{company}",
            as_of="2023-12-31",
            known_at=instant(fix, -1),
        )
        _, at = await get(
            client, tokens, f"/companies/{company}", as_of="2023-12-31", known_at=instant(fix)
        )
        # then the earlier answer is what the ledger said then
        assert then["valuation"]["value"] == "1000000000"
        assert then["position"] == fix["position"] - 1
        assert at["valuation"]["value"] == "1100000000"
        assert at["position"] == fix["position"]


def random_event(
    rng: random.Random, company: str, valuations: list[dict[str, Any]], amended: list[str]
) -> dict[str, Any]:
    """A valuation, a round, a correction (of a fact or of a correction) or a retraction."""
    day = dt.date(2019, 1, 1) + dt.timedelta(days=rng.randrange(7 * 365))
    u = rng.random()
    if valuations and u < 0.2:
        target = rng.choice(valuations)
        value = str(rng.randint(1, 90) * 10**8)
        data = {**target["data"], "valuation": {"value": value, "currency": "USD"}}
        chain = [e for e in amended if e.startswith(target["event_id"])]
        target_id = rng.choice(chain).split("/")[-1] if chain and rng.random() < 0.5 else None
        envelope = f.corrected(target_id or target["event_id"], data)
        if rng.random() < 0.5:
            envelope["data"]["effective_date"] = day.isoformat()
        amended.append(f"{target['event_id']}/{envelope['event_id']}")
        return envelope
    if (valuations or amended) and u < 0.3:
        pool = [v["event_id"] for v in valuations] + [a.split("/")[-1] for a in amended]
        target = rng.choice(pool)
        # nothing amends a retracted event, nor what amends a retracted fact: out of the pools
        if any(v["event_id"] == target for v in valuations):
            valuations[:] = [v for v in valuations if v["event_id"] != target]
            amended[:] = [a for a in amended if not a.startswith(target)]
        else:
            amended[:] = [a for a in amended if a.split("/")[-1] != target]
        return f.retracted(target)
    if u < 0.7:
        value = str(rng.randint(1, 90) * 10**8)
        envelope = f.valuation_reported(company, value, effective_date=day.isoformat())
        valuations.append(envelope)
        return envelope
    investors = [{"investor_id": i} for i in rng.sample(INVESTORS, rng.randint(1, 2))]
    return f.round_announced(
        company,
        effective_date=day.isoformat(),
        data={
            "company_id": company,
            "round_name": f"Series {rng.choice('ABCD')}",
            "amount": {"value": str(rng.randint(1, 50) * 10**7), "currency": "USD"},
            "investors": investors,
        },
    )


async def answers(
    client: AsyncTestClient[Any], tokens: Tokens, companies: list[str], instants: list[str]
) -> list[Any]:
    found = []
    for known_at in instants:
        for as_of in ("2018-12-31", "2021-06-30", "2023-01-01", "2026-01-01"):
            for company in companies:
                found.append(
                    await get(
                        client, tokens, f"/companies/{company}", as_of=as_of, known_at=known_at
                    )
                )
                found.append(
                    await get(client, tokens, f"/companies/{company}/valuations", known_at=known_at)
                )
            for investor in INVESTORS:
                found.append(
                    await get(
                        client,
                        tokens,
                        f"/investors/{investor}/portfolio",
                        as_of=as_of,
                        known_at=known_at,
                    )
                )
    return found


async def test_answers_from_held_streams_equal_answers_read_whole(
    db_url: str, tokens: Tokens
) -> None:
    rng = random.Random(20231021)
    companies = [unique_id() for _ in range(3)]
    receipts = []
    async with (
        client_for(db_url) as warm,  # holds every stream, extended after each append
        client_for(db_url, stream_cache_events=50) as small,  # holds one stream at a time
        client_for(db_url, stream_cache_events=0) as cold,  # reads every stream whole
    ):
        # given three companies' random histories with corrections and retractions, asked
        # about after every append so that the held streams grow one event at a time
        for company in companies:
            receipts.append(await append(warm, tokens, f.company_registered(company)))
        valuations: dict[str, list[dict[str, Any]]] = {c: [] for c in companies}
        amended: dict[str, list[str]] = {c: [] for c in companies}
        for _ in range(90):
            company = rng.choice(companies)
            envelope = random_event(rng, company, valuations[company], amended[company])
            receipts.append(await append(warm, tokens, envelope))
            status, _ = await get(warm, tokens, f"/companies/{company}", as_of="2026-01-01")
            assert status == 200
            await get(small, tokens, f"/companies/{rng.choice(companies)}", as_of="2026-01-01")
        # when each is asked the same questions at instants along the log
        instants = [instant(r, shift) for r in receipts[::9] for shift in (-1, 0)]
        instants.append(instant(receipts[-1], 1))
        last = receipts[-1]["position"]
        for client in (warm, small, cold):  # the portfolios come from the read models
            await get(client, tokens, "/investors/alibaba/portfolio", min_position=last)
        expected = await answers(cold, tokens, companies, instants)
        # then every answer is the same, and the small cache stayed within its bound
        assert await answers(warm, tokens, companies, instants) == expected
        assert await answers(small, tokens, companies, instants) == expected
        assert sum(status == 200 for status, _ in expected) > len(expected) // 2
        assert 0 < small.app.state.streams.events <= 50
        assert warm.app.state.streams.events == len(receipts)
        metrics = (await warm.get("/metrics")).text
        assert f"ledger_stream_cache_events {float(len(receipts))}" in metrics
        assert 'ledger_stream_reads_total{result="hit"}' in metrics


async def test_unknown_companies_are_not_held(db_url: str, tokens: Tokens) -> None:
    async with client_for(db_url) as client:
        # given a known company, held after one answer
        company = unique_id()
        await append(client, tokens, f.company_registered(company))
        assert (await get(client, tokens, f"/companies/{company}"))[0] == 200
        held = len(client.app.state.streams)
        # when many companies the ledger has never heard of are asked for
        for _ in range(50):
            assert (await get(client, tokens, f"/companies/{unique_id()}"))[0] == 404
        # then none of them takes a place in memory
        assert len(client.app.state.streams) == held


async def test_a_stream_grown_past_the_bound_is_let_go_and_the_count_stays_true(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url, stream_cache_events=30) as client:
        cache = client.app.state.streams
        # given a company of 25 events, held
        big, small = unique_id(), unique_id()
        await append(client, tokens, f.company_registered(big))
        for n in range(24):
            await append(client, tokens, f.valuation_reported(big, str((n + 1) * 10**8)))
        assert (await get(client, tokens, f"/companies/{big}"))[0] == 200
        assert (len(cache), cache.events) == (1, 25)
        # when it grows past the whole cache, then another company is asked for
        for n in range(10):
            later = f.valuation_reported(
                big, str((n + 30) * 10**8), effective_date=f"2024-01-{n + 10}"
            )
            await append(client, tokens, later)
        status, grown = await get(client, tokens, f"/companies/{big}")
        held_after_growth = (len(cache), cache.events)
        await append(client, tokens, f.company_registered(small))
        assert (await get(client, tokens, f"/companies/{small}"))[0] == 200
        # then the grown stream was answered in full but not held, and the count is exact
        assert status == 200 and grown["valuation"]["value"] == str(39 * 10**8)
        assert held_after_growth == (0, 0)
        assert (len(cache), cache.events) == (1, 1)


async def test_a_full_cache_turning_over_never_freezes_the_heap(
    db_url: str, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each freeze begins with a full collection, a pause that grows with the memory held: it
    # may come with growth of what is held, never with a full cache merely turning over.
    async with client_for(db_url, stream_cache_events=3000) as client:
        # given 40 companies of 100 events each, more than the cache holds
        companies = [unique_id() for _ in range(40)]
        for company in companies:
            day = dt.date(2019, 1, 1)
            envelopes = [f.company_registered(company)] + [
                f.valuation_reported(
                    company, str(10**9 + n), effective_date=str(day + dt.timedelta(days=n))
                )
                for n in range(99)
            ]
            await append(client, tokens, {"events": envelopes})
        # and a cache that has grown full, and frozen what it held meanwhile
        for company in companies:
            assert (await get(client, tokens, f"/companies/{company}"))[0] == 200
        assert client.app.state.streams.events > 2000
        freezes: list[int] = []
        monkeypatch.setattr(gc, "freeze", lambda: freezes.append(1))
        # when every company is asked for twice more, each read replacing another stream
        for company in companies + companies:
            assert (await get(client, tokens, f"/companies/{company}"))[0] == 200
        # then the heap was not frozen again
        assert freezes == []
