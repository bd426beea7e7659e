"""A dispatcher killed with sends in flight: its leases end with it, not when they run out.

The servers are ``ledger serve`` processes; the receiver is a real HTTP server that holds some
requests open, so that the process is killed with deliveries leased and in flight.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests import factories
from tests.receiver import Answer, Received, Receiver
from tests.support import ServerProcess, make_tokens, unique_id, wait_for

# A time limit that makes the lease (2 x limit + 5 s) far longer than the wait below: only
# the owner's death can make the leased deliveries due in time.
ENV = {
    "LEDGER_WEBHOOK_ALLOW_PRIVATE": "1",
    "LEDGER_WEBHOOK_TIMEOUT": "20",
    "LEDGER_WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT": "8",
}
HELD = 8  # sends in flight when the process dies: the endpoint's share
PENDING = 20  # events appended while the receiver holds requests


@pytest.fixture
def processes(db_url: str, artifacts: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """Build ``ledger serve`` processes on this test's database; kill any left at the end."""
    started: list[ServerProcess] = []

    def make() -> ServerProcess:
        name = f"{request.node.name}-{len(started)}.log"
        process = ServerProcess(db_url, artifacts / name, env=ENV)
        started.append(process)
        return process

    yield make
    for process in started:
        if process.process is not None and process.process.poll() is None:
            process.kill()


class HoldingReceiver:
    """Answers 200 at once, or holds each request open while ``holding`` is set."""

    def __init__(self) -> None:
        self.holding = threading.Event()
        self.released = threading.Event()
        self.accepted: list[str] = []  # ids answered 200 while not holding
        self.receiver = Receiver(self._answer)

    def _answer(self, request: Received, _count: int) -> Answer:
        if self.holding.is_set():
            self.released.wait(timeout=60)  # the sender is killed meanwhile
            return Answer(200)
        self.accepted.append(request.headers["webhook-id"])
        return Answer(200)


async def _append(http: httpx.AsyncClient, header: dict[str, str], n: int) -> list[str]:
    company = unique_id()
    batch = [factories.company_registered(company)] + [
        factories.valuation_reported(company, value=str(10**9 + i)) for i in range(n - 1)
    ]
    answer = await http.post("/events", json={"events": batch}, headers=header)
    assert answer.status_code == 201, answer.text
    return [receipt["event_id"] for receipt in answer.json()["receipts"]]


async def test_kill_9_with_sends_in_flight_resends_within_seconds_of_the_restart(
    db_url: str, processes: Any
) -> None:
    tokens = await make_tokens(db_url)
    holder = HoldingReceiver()
    with holder.receiver.running() as receiver:
        # given: deliveries recorded as sent, then deliveries leased and held in flight
        first = processes()
        first.start()
        async with httpx.AsyncClient(base_url=first.base_url, timeout=30) as http:
            created = await http.post(
                "/webhooks", json={"url": receiver.url}, headers=tokens.header()
            )
            delivered = await _append(http, tokens.header(), 10)

            async def recorded() -> bool:
                health = (await http.get("/health")).json()["webhooks"]
                return bool(health["pending_deliveries"] == 0 and health["lag"] == 0)

            await wait_for(recorded, within=20)
            holder.holding.set()
            pending = await _append(http, tokens.header(), PENDING)
            await wait_for(lambda: _arrived(receiver, len(delivered) + HELD), within=20)
        # when: the process dies with those sends in flight, and another starts
        first.kill()
        holder.holding.clear()
        holder.released.set()
        second = processes()
        second.start()

        # then: every pending delivery arrives within seconds, not when the leases run out
        async def all_accepted() -> bool:
            return set(holder.accepted) >= set(pending)

        await wait_for(all_accepted, within=10)
        second.terminate()
    # and: what was recorded as sent before the kill was not sent again
    sent = collections.Counter(holder.receiver.ids())
    assert all(sent[event_id] == 1 for event_id in delivered)
    assert set(holder.accepted) == set(delivered) | set(pending)
    for request in receiver.snapshot():
        Webhook(created.json()["secret"]).verify(request.body, request.headers)


async def _arrived(receiver: Receiver, n: int) -> bool:
    return len(receiver.snapshot()) >= n
