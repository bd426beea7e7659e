"""One endpoint that never answers holds at most its share of the sends in flight."""

from __future__ import annotations

import threading
from typing import Any

from tests import factories
from tests.receiver import Answer, Received, Receiver
from tests.support import append, client_for, make_tokens, unique_id, wait_for

TIME_LIMIT = 30.0
SETTINGS = {
    "webhook_allow_private": True,
    "webhook_timeout_seconds": TIME_LIMIT,
    "webhook_concurrency": 4,
    "webhook_max_in_flight_per_endpoint": 2,
}


class Stuck:
    """A receiver that never answers while the test runs, counting what it holds."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.held = 0
        self.most_held = 0
        self._lock = threading.Lock()
        self.receiver = Receiver(self._answer)

    def _answer(self, _request: Received, _count: int) -> Answer:
        with self._lock:
            self.held += 1
            self.most_held = max(self.most_held, self.held)
        self.done.wait(timeout=2 * TIME_LIMIT)
        with self._lock:
            self.held -= 1
        return Answer(200)


async def _register(client: Any, tokens: Any, url: str) -> None:
    created = await client.post("/webhooks", json={"url": url}, headers=tokens.header())
    assert created.status_code == 201, created.text


async def _append_many(client: Any, tokens: Any, n: int) -> list[str]:
    company = unique_id()
    batch = [factories.company_registered(company)] + [
        factories.valuation_reported(company, value=str(10**9 + i)) for i in range(n - 1)
    ]
    receipt = await append(client, tokens, {"events": batch})
    return [r["event_id"] for r in receipt["receipts"]]


async def test_an_endpoint_that_never_answers_does_not_hold_up_the_others(db_url: str) -> None:
    tokens = await make_tokens(db_url)
    stuck = Stuck()
    with stuck.receiver.running(), Receiver().running() as a, Receiver().running() as b:
        try:
            async with client_for(db_url, **SETTINGS) as client:
                # given: a stuck endpoint with a backlog older than anything else's
                await _register(client, tokens, stuck.receiver.url)
                await _append_many(client, tokens, 10)
                await wait_for(lambda: _holding(stuck, 2), within=10)
                await _register(client, tokens, a.url)
                await _register(client, tokens, b.url)
                # when: events for every endpoint follow
                events = await _append_many(client, tokens, 20)

                # then: the healthy endpoints get them all, well within the stuck one's limit
                async def healthy_done() -> bool:
                    return set(a.ids()) >= set(events) and set(b.ids()) >= set(events)

                await wait_for(healthy_done, within=TIME_LIMIT / 3)
                assert stuck.most_held == 2  # its share, never more
        finally:
            stuck.done.set()


async def _holding(stuck: Stuck, n: int) -> bool:
    return stuck.held >= n
