"""A webhook delivers only what its creator may read: registering and replaying need events:read.

``webhooks:manage`` alone manages endpoints but cannot point one at a URL of its choice, nor
send the log again, since either would hand it every event that ``GET /events`` refuses it.
"""

from __future__ import annotations

from typing import Any

import pytest

from service.keys import create_key
from tests import factories
from tests.support import append, client_for, connected, make_tokens, unique_id

SETTINGS = {"webhook_allow_private": True}


async def _token(url: str, *scopes: str) -> dict[str, str]:
    async with connected(url) as conn:
        _, token = await create_key(conn, "-".join(scopes), list(scopes))
    return {"Authorization": f"Bearer {token}"}


def _refused_for_events_read(answer: Any) -> None:
    assert answer.status_code == 403, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "'events:read'" in answer.json()["detail"]


async def test_registering_with_webhooks_manage_alone_is_refused(db_url: str) -> None:
    # given a token that may manage webhooks but not read the log
    manager = await _token(db_url, "webhooks:manage")
    async with client_for(db_url, **SETTINGS) as client:
        assert (await client.get("/events", headers=manager)).status_code == 403
        # when it registers its own URL
        answer = await client.post(
            "/webhooks", json={"url": "http://127.0.0.1:9/mine"}, headers=manager
        )
        # then it is refused, naming the scope it lacks, and nothing is registered
        listed = await client.get("/webhooks", headers=manager)
    _refused_for_events_read(answer)
    assert listed.status_code == 200 and listed.json()["webhooks"] == []


@pytest.mark.parametrize("scopes", [("webhooks:manage", "events:read"), ("admin",)])
async def test_registering_with_events_read_too_is_allowed(
    db_url: str, scopes: tuple[str, ...]
) -> None:
    token = await _token(db_url, *scopes)
    async with client_for(db_url, **SETTINGS) as client:
        answer = await client.post(
            "/webhooks", json={"url": "http://127.0.0.1:9/in"}, headers=token
        )
    assert answer.status_code == 201, answer.text


async def test_replaying_the_log_needs_events_read(db_url: str) -> None:
    # given an endpoint registered by a reader, and events in the log
    tokens = await make_tokens(db_url)
    manager = await _token(db_url, "webhooks:manage")
    async with client_for(db_url, **SETTINGS) as client:
        created = await client.post(
            "/webhooks", json={"url": "http://127.0.0.1:9/in"}, headers=tokens.header()
        )
        endpoint = created.json()["id"]
        await append(client, tokens, factories.company_registered(unique_id()))
        # when a token without events:read asks for the log again
        replay = await client.post(
            f"/webhooks/{endpoint}/replay", json={"after_position": 0}, headers=manager
        )
        # then it is refused and nothing is queued
        page = await client.get(f"/webhooks/{endpoint}/deliveries", headers=tokens.header())
        # while managing the endpoint otherwise still works with webhooks:manage alone
        shown = await client.get(f"/webhooks/{endpoint}", headers=manager)
    _refused_for_events_read(replay)
    assert [d for d in page.json()["deliveries"] if d["replay"]] == []
    assert shown.status_code == 200
