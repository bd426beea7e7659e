"""Enabling an endpoint that answered 410 Gone resumes everything the 410 stopped."""

from __future__ import annotations

from tests import factories
from tests.receiver import Answer, Received, Receiver
from tests.support import append, client_for, make_tokens, unique_id, wait_for

FAST = {
    "webhook_allow_private": True,
    "webhook_retry_schedule": (0.05, 0.05, 0.05),
    "webhook_timeout_seconds": 2.0,
}


async def test_enabling_after_a_410_sends_the_message_it_failed(db_url: str) -> None:
    tokens = await make_tokens(db_url)
    gone = True

    def answer(_request: Received, _count: int) -> Answer:
        return Answer(410 if gone else 200)

    async with client_for(db_url, **FAST) as client:
        with Receiver(answer).running() as receiver:
            # given an endpoint that answered 410 to a message, and an event appended since
            created = await client.post(
                "/webhooks", json={"url": receiver.url}, headers=tokens.header()
            )
            endpoint = created.json()["id"]
            company = unique_id()
            first = await append(client, tokens, factories.company_registered(company))

            async def disabled() -> bool:
                shown = await client.get(f"/webhooks/{endpoint}", headers=tokens.header())
                return bool(shown.json()["status"] == "disabled")

            await wait_for(disabled)
            later = await append(client, tokens, factories.valuation_reported(company))
            # when the receiver is back and the endpoint is enabled
            gone = False
            enabled = await client.post(f"/webhooks/{endpoint}/enable", headers=tokens.header())
            assert enabled.status_code == 200

            # then the message failed by the 410 goes out again, and the one queued behind it
            async def both_delivered() -> bool:
                page = await client.get(f"/webhooks/{endpoint}/deliveries", headers=tokens.header())
                return {d["status"] for d in page.json()["deliveries"]} == {"succeeded"}

            await wait_for(lambda: _arrived(receiver, 3))
            await wait_for(both_delivered)
            page = await client.get(f"/webhooks/{endpoint}/deliveries", headers=tokens.header())
    ids = receiver.ids()
    assert ids[0] == first["event_id"]  # the one answered 410
    assert sorted(ids[1:]) == sorted([first["event_id"], later["event_id"]])
    by_event = {d["event_id"]: d for d in page.json()["deliveries"]}
    assert [a["response_code"] for a in by_event[first["event_id"]]["attempt_log"]] == [410, 200]
    assert len(page.json()["deliveries"]) == 2  # resumed, not queued a second time


async def _arrived(receiver: Receiver, n: int) -> bool:
    return len(receiver.snapshot()) >= n
