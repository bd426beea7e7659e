"""A subscriber to some event types hears of every amendment of the facts it was sent."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from tests import factories
from tests.receiver import Receiver
from tests.support import Tokens, append, client_for, make_tokens, unique_id, wait_for

FAST = {
    "webhook_allow_private": True,
    "webhook_retry_schedule": (0.05, 0.05, 0.05),
    "webhook_timeout_seconds": 2.0,
}


async def _settled(client: AsyncTestClient[Any]) -> bool:
    webhooks = (await client.get("/health")).json()["webhooks"]
    return bool(webhooks["pending_deliveries"] == 0 and webhooks["lag"] == 0)


async def _received(receiver: Receiver, n: int) -> bool:
    return len(receiver.snapshot()) >= n


async def test_corrections_and_retractions_reach_the_subscribers_of_the_facts_type(
    db_url: str,
) -> None:
    tokens: Tokens = await make_tokens(db_url)
    async with client_for(db_url, **FAST) as client:
        with Receiver().running() as receiver:
            # given an endpoint that subscribed to valuations only
            response = await client.post(
                "/webhooks",
                json={"url": receiver.url, "event_types": ["valuation_reported"]},
                headers=tokens.header(),
            )
            assert response.status_code == 201, response.text
            company = unique_id()
            registered = await append(client, tokens, factories.company_registered(company))

            # when a valuation is corrected, the correction corrected, and that retracted,
            # while the company's registration (another type) is corrected too
            valuation = factories.valuation_reported(company)
            corrected_data = {
                **valuation["data"],
                "valuation": {"value": "2000000000", "currency": "USD"},
            }
            sent = [await append(client, tokens, valuation)]
            sent.append(
                await append(
                    client, tokens, factories.corrected(sent[0]["event_id"], corrected_data)
                )
            )
            sent.append(
                await append(
                    client, tokens, factories.corrected(sent[1]["event_id"], valuation["data"])
                )
            )
            sent.append(await append(client, tokens, factories.retracted(sent[2]["event_id"])))
            renamed = {"company_id": company, "name": "Zhipu", "jurisdiction": "CN"}
            await append(client, tokens, factories.corrected(registered["event_id"], renamed))
            await wait_for(lambda: _received(receiver, len(sent)), within=30)
            await wait_for(lambda: _settled(client), within=30)
            first = receiver.ids()

            # and when the endpoint asks for everything again
            endpoint = response.json()["id"]
            replay = await client.post(
                f"/webhooks/{endpoint}/replay",
                json={"after_position": 0},
                headers=tokens.header(),
            )
            assert replay.status_code == 202, replay.text
            await wait_for(lambda: _received(receiver, 2 * len(sent)), within=30)
            await wait_for(lambda: _settled(client), within=30)

    # then the endpoint got the valuation and each of its amendments, and nothing else, twice
    expected = [receipt["event_id"] for receipt in sent]
    assert sorted(first) == sorted(expected)  # deliveries may arrive out of order
    assert sorted(receiver.ids()[len(first) :]) == sorted(expected)
