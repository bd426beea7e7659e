"""Webhook delivery across real processes: a crash with deliveries pending, and two dispatchers.

The servers and workers are ``ledger`` processes; the receiver is a real HTTP server.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests import factories
from tests.receiver import Answer, Received, Receiver
from tests.support import ServerProcess, make_tokens, unique_id, wait_for

ENV = {
    "LEDGER_WEBHOOK_ALLOW_PRIVATE": "1",
    "LEDGER_WEBHOOK_RETRY_SCHEDULE": ",".join(["300ms"] * 30),
    "LEDGER_WEBHOOK_TIMEOUT": "1",  # in-flight sends of a killed process are leased for 7 s
}


@pytest.fixture
def processes(db_url: str, ledger_processes: Callable[..., ServerProcess]) -> Any:
    """Build ``ledger`` processes on this test's database; any still running are killed."""

    def make(command: str = "serve", **env: str) -> ServerProcess:
        return ledger_processes(db_url, command, **{**ENV, **env})

    return make


async def _append_batch(http: httpx.AsyncClient, header: dict[str, str], n: int) -> list[str]:
    company = unique_id()
    batch = [factories.company_registered(company)] + [
        factories.valuation_reported(company, value=str(10**9 + i)) for i in range(n - 1)
    ]
    answer = await http.post("/events", json={"events": batch}, headers=header)
    assert answer.status_code == 201, answer.text
    return [receipt["event_id"] for receipt in answer.json()["receipts"]]


async def test_kill_9_with_deliveries_pending_loses_nothing(db_url: str, processes: Any) -> None:
    tokens = await make_tokens(db_url)
    accepting = threading.Event()
    accepted: set[str] = set()

    def answer(request: Received, _count: int) -> Answer:
        if not accepting.is_set():
            return Answer(503)
        accepted.add(request.headers["webhook-id"])
        return Answer(200)

    with Receiver(answer).running() as receiver:
        first = processes()
        first.start()
        async with httpx.AsyncClient(base_url=first.base_url, timeout=30) as http:
            created = await http.post(
                "/webhooks", json={"url": receiver.url}, headers=tokens.header()
            )
            secret = created.json()["secret"]
            acknowledged: list[str] = []
            for _ in range(3):
                acknowledged += await _append_batch(http, tokens.header(), 10)
            await wait_for(lambda: _received(receiver, 30), within=20)  # all failing, retrying
            acknowledged += await _append_batch(http, tokens.header(), 10)  # perhaps not queued
        first.kill()
        accepting.set()
        second = processes()
        second.start()

        async def all_accepted() -> bool:
            return accepted >= set(acknowledged)

        await wait_for(all_accepted, within=40)
        second.terminate()
    for request in receiver.snapshot():
        Webhook(secret).verify(request.body, request.headers)


async def test_two_dispatcher_processes_send_each_event_once(db_url: str, processes: Any) -> None:
    tokens = await make_tokens(db_url)
    with Receiver().running() as receiver:
        # a generous time limit: a slow moment on a busy machine must not cause a retry
        server = processes("serve", LEDGER_WEBHOOK_TIMEOUT="10")
        worker = processes("worker", LEDGER_WEBHOOK_TIMEOUT="10")
        server.start()
        worker.start()
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            for path in ("a", "b", "c"):
                created = await http.post(
                    "/webhooks",
                    json={"url": receiver.url.replace("/hook", f"/{path}")},
                    headers=tokens.header(),
                )
                assert created.status_code == 201, created.text
            batches = await asyncio.gather(
                *[_append_batch(http, tokens.header(), 10) for _ in range(30)]
            )
            events = [event_id for batch in batches for event_id in batch]
            await wait_for(lambda: _received(receiver, 3 * len(events)), within=60)
            # once every outcome is recorded nothing is leased any more: no send can follow

            async def settled() -> bool:
                health = (await http.get("/health")).json()["webhooks"]
                return bool(health["pending_deliveries"] == 0 and health["lag"] == 0)

            await wait_for(settled)
        worker.terminate()
        server.terminate()
    sent = collections.Counter((r.path, r.headers["webhook-id"]) for r in receiver.snapshot())
    assert set(sent) == {(f"/{p}", e) for p in "abc" for e in events}
    assert set(sent.values()) == {1}  # no attempt sent twice


async def _received(receiver: Receiver, n: int) -> bool:
    return len(receiver.snapshot()) >= n
