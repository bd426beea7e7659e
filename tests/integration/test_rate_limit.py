"""Overload, in-process: a rate per token (429 with Retry-After)."""

from __future__ import annotations

from tests.support import client_for, make_tokens, wait_for


async def test_a_token_over_its_rate_gets_429_and_others_do_not(db_url: str) -> None:
    tokens = await make_tokens(db_url)
    async with client_for(db_url, rate_limit=2.0, rate_burst=3) as client:
        answers = [await client.get("/events", headers=tokens.header("read")) for _ in range(4)]
        other = await client.get("/events", headers=tokens.header("all"))
        unauthenticated = await client.get("/events")
        health = await client.get("/health")

        async def allowed_again() -> bool:  # two per second: one is back within half a second
            answer = await client.get("/events", headers=tokens.header("read"))
            return bool(answer.status_code == 200)

        await wait_for(allowed_again, within=2)
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["status"] == 429
    assert other.status_code == 200  # the limit is per token
    assert unauthenticated.status_code == 401 and health.status_code == 200
