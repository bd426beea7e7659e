"""Events that would contradict themselves or change nothing are refused with 422."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import asyncpg
import pytest

from tests import factories as f
from tests.support import Tokens, append, client_for, count_events, unique_id


async def refused(client: Any, tokens: Tokens, envelope: dict[str, Any]) -> list[str]:
    """Post ``envelope``, expect a 422, and return the fields it names."""
    response = await client.post("/events", json=envelope, headers=tokens.header("write"))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [e["field"] for e in response.json()["errors"]]


def round_without_amount(company: str) -> dict[str, Any]:
    envelope = f.round_announced(company)
    envelope["data"]["amount"] = None
    return envelope


async def test_a_dollar_figure_without_the_amount_counts_in_the_total(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        company = unique_id()
        await append(client, tokens, f.company_registered(company))
        # given a round whose amount in its own currency is unknown but whose USD figure is
        # reported, and a round with neither
        envelope = round_without_amount(company)
        envelope["data"]["amount_usd"] = "342000000"
        await append(client, tokens, envelope)
        undisclosed = round_without_amount(company)
        undisclosed["data"]["round_name"] = "Series Z"
        undisclosed["data"].pop("amount_usd", None)
        await append(client, tokens, undisclosed)
        # then the reported dollar figure counts, and the undisclosed round nothing
        state = (await client.get(f"/companies/{company}", headers=tokens.header())).json()
        assert state["total_raised_usd"] == "342000000"
        assert {r["round_name"]: r["amount_usd"] for r in state["rounds"]} == {
            envelope["data"]["round_name"]: "342000000",
            "Series Z": None,
        }


@pytest.mark.parametrize("code", ["XXX", "XTS"])
async def test_codes_that_name_no_money_are_refused(db_url: str, tokens: Tokens, code: str) -> None:
    async with client_for(db_url) as client:
        company = unique_id()
        await append(client, tokens, f.company_registered(company))
        valuation = f.valuation_reported(company)
        valuation["data"]["valuation"]["currency"] = code
        assert await refused(client, tokens, valuation) == ["data.valuation.currency"]
        round_ = f.round_announced(company)
        round_["data"]["amount"]["currency"] = code
        assert await refused(client, tokens, round_) == ["data.amount.currency"]
        round_ = f.round_announced(company)
        round_["data"]["post_money_valuation"] = {"value": "1000", "currency": code}
        assert await refused(client, tokens, round_) == ["data.post_money_valuation.currency"]
    assert await count_events(db_url) == 1


async def test_real_currencies_beginning_with_x_are_money(db_url: str, tokens: Tokens) -> None:
    async with client_for(db_url) as client:
        company = unique_id()
        await append(client, tokens, f.company_registered(company))
        for code in ["XOF", "XAF", "XCD", "XDR", "XAU"]:
            valuation = f.valuation_reported(company)
            valuation["data"]["valuation"]["currency"] = code
            await append(client, tokens, valuation)


async def test_nothing_amends_a_retracted_fact(db_url: str, tokens: Tokens) -> None:
    async with client_for(db_url) as client:
        company = unique_id()
        await append(client, tokens, f.company_registered(company))
        fact = f.valuation_reported(company, "500")
        stored = await append(client, tokens, fact)
        correction = await append(client, tokens, f.corrected(stored["event_id"], fact["data"]))
        # given the fact is retracted
        await append(client, tokens, f.retracted(stored["event_id"]))
        # then neither it, nor a correction of it, can be corrected or retracted again
        for target in [stored["event_id"], correction["event_id"]]:
            for amendment in [f.corrected(target, fact["data"]), f.retracted(target)]:
                assert await refused(client, tokens, amendment) == ["data.target_event_id"]
    assert await count_events(db_url) == 4


async def test_a_retracted_correction_is_not_amended_again(db_url: str, tokens: Tokens) -> None:
    async with client_for(db_url) as client:
        company = unique_id()
        await append(client, tokens, f.company_registered(company))
        fact = f.valuation_reported(company, "500")
        stored = await append(client, tokens, fact)
        correction = await append(client, tokens, f.corrected(stored["event_id"], fact["data"]))
        await append(client, tokens, f.retracted(correction["event_id"]))
        for amendment in [
            f.corrected(correction["event_id"], fact["data"]),
            f.retracted(correction["event_id"]),
        ]:
            assert await refused(client, tokens, amendment) == ["data.target_event_id"]
        # the fact itself is not retracted: it may still be corrected
        await append(client, tokens, f.corrected(stored["event_id"], fact["data"]))


async def test_a_batch_that_retracts_then_corrects_is_refused(db_url: str, tokens: Tokens) -> None:
    async with client_for(db_url) as client:
        company = unique_id()
        await append(client, tokens, f.company_registered(company))
        fact = f.valuation_reported(company, "500")
        stored = await append(client, tokens, fact)
        batch = {
            "events": [
                f.retracted(stored["event_id"]),
                f.corrected(stored["event_id"], fact["data"]),
            ]
        }
        assert await refused(client, tokens, batch) == ["events[1].data.target_event_id"]
    assert await count_events(db_url) == 2


async def test_concurrent_retraction_and_correction_never_leave_a_dead_correction(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        company = unique_id()
        await append(client, tokens, f.company_registered(company))
        for _ in range(20):
            # given a fact, then its retraction and a correction sent at the same time
            fact = f.valuation_reported(company, "500")
            stored = await append(client, tokens, fact)
            amendments = [f.retracted(stored["event_id"])]
            amendments += [f.corrected(stored["event_id"], copy.deepcopy(fact["data"]))] * 3
            await asyncio.gather(
                *(
                    client.post("/events", json=a, headers=tokens.header("write"))
                    for a in amendments
                )
            )
    # then no correction was recorded after the retraction of its fact
    conn = await asyncpg.connect(db_url)
    try:
        late = await conn.fetchval(
            """SELECT count(*) FROM events c JOIN events r
                   ON r.type = 'event_retracted' AND r.target_event_id = c.target_event_id
               WHERE c.type = 'event_corrected' AND c.position > r.position"""
        )
    finally:
        await conn.close()
    assert late == 0
