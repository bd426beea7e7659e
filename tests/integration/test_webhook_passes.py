"""The dispatcher sends statements only when they may find work, and misses none that is."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from service.settings import Settings
from service.webhooks import dispatcher as dispatching
from service.webhooks.dispatcher import Dispatcher
from service.webhooks.registry import WEBHOOKS_CHANNEL, create_endpoint
from service.webhooks.targets import SystemResolver
from service.webhooks.transport import Sender
from tests import factories
from tests.receiver import Receiver
from tests.support import append, client_for, connected, make_tokens, unique_id, wait_for

SETTINGS = {"webhook_allow_private": True}


class Statements:
    """Counts the fan-out and claim statements the dispatcher sends, and what they found."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.fan_outs: list[Any] = []
        self.claims = 0
        fan_out, claim = dispatching.fan_out, dispatching.claim

        async def counted_fan_out(conn: Any) -> Any:
            self.fan_outs.append(found := await fan_out(conn))
            return found

        async def counted_claim(*args: Any) -> Any:
            self.claims += 1
            return await claim(*args)

        monkeypatch.setattr(dispatching, "fan_out", counted_fan_out)
        monkeypatch.setattr(dispatching, "claim", counted_claim)


async def test_appends_while_no_endpoint_is_enabled_send_no_statement(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a dispatcher that has looked once and found no endpoint
    statements = Statements(monkeypatch)
    settings = Settings(database_url=db_url, **SETTINGS)
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    dispatcher = Dispatcher(pool, settings, SystemResolver(), db_url)
    sender = Sender(settings, SystemResolver())
    try:
        await dispatcher._pass(sender)
        assert [f["enabled"] for f in statements.fan_outs] == [False]
        # when the log grows, again and again
        for _ in range(3):
            dispatcher.appended()
            more = await dispatcher._pass(sender)
            # then nothing is asked of the database
            assert not more
        assert len(statements.fan_outs) == 1
        assert statements.claims == 1
        # and anything else (a new endpoint, a replay) is looked for at once
        dispatcher.wake()
        await dispatcher._pass(sender)
        assert (len(statements.fan_outs), statements.claims) == (2, 2)
    finally:
        await sender.aclose()
        await dispatcher._owner.release()
        await pool.close()


async def test_registering_an_endpoint_wakes_the_dispatchers(db_url: str) -> None:
    # given a session listening where dispatchers listen
    heard: asyncio.Queue[str] = asyncio.Queue()
    async with connected(db_url) as listening, connected(db_url) as conn:
        await listening.add_listener(WEBHOOKS_CHANNEL, lambda *args: heard.put_nowait(args[2]))
        # when an endpoint is registered
        await create_endpoint(conn, "https://example.com/hook", None, "")
        # then they hear of it (a dispatcher that saw none enabled would not look otherwise)
        async with asyncio.timeout(10):
            assert await heard.get() == WEBHOOKS_CHANNEL


async def test_an_endpoint_at_its_share_gets_the_rest_as_its_sends_end(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a dispatcher that looks again by itself only every ten minutes, and an endpoint
    # that may have three sends in flight
    monkeypatch.setattr(dispatching, "POLL_SECONDS", 600.0)
    tokens = await make_tokens(db_url)
    with Receiver().running() as receiver:
        async with client_for(db_url, **SETTINGS, webhook_max_in_flight_per_endpoint=3) as client:
            created = await client.post(
                "/webhooks", json={"url": receiver.url}, headers=tokens.header()
            )
            assert created.status_code == 201, created.text
            # when many more events than that are appended at once
            company = unique_id()
            batch = [factories.company_registered(company)] + [
                factories.valuation_reported(company, value=str(10**9 + i)) for i in range(59)
            ]
            receipt = await append(client, tokens, {"events": batch})

            # then every one is delivered, each freed slot taking the next
            async def delivered() -> bool:
                return len(set(receiver.ids())) == len(receipt["receipts"])

            await wait_for(delivered, within=30)
