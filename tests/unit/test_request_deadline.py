"""A request past LEDGER_REQUEST_TIMEOUT is answered 503 and what it waits for is cancelled."""

from __future__ import annotations

import asyncio

from litestar import Litestar, get
from litestar.testing import AsyncTestClient

from service.http.deadlines import RequestDeadline
from service.http.problems import problem_details_plugin

LIMIT = 0.3


class Hanging:
    """A route that waits for ever, and says when it is cancelled."""

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()

    def app(self) -> Litestar:
        @get("/hang")
        async def hang() -> str:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
            return "never"

        @get("/quick")
        async def quick() -> str:
            return "quick"

        return Litestar(
            route_handlers=[hang, quick],
            middleware=[RequestDeadline(LIMIT)],
            plugins=[problem_details_plugin()],
        )


async def test_a_request_past_the_limit_is_answered_503_and_cancelled() -> None:
    # given a route that never answers
    hanging = Hanging()
    async with AsyncTestClient(app=hanging.app(), timeout=10) as client:
        # when it is asked
        answer = await client.get("/hang")
        # then the answer is a 503 problem, with Retry-After, and the route is cancelled
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.headers["retry-after"] == "1"
        assert "LEDGER_REQUEST_TIMEOUT" in answer.json()["detail"]
        assert hanging.cancelled.is_set()
        # and other requests are answered as usual
        assert (await client.get("/quick")).text == "quick"
