"""Webhooks end to end: registration, signed delivery, retries, rotation, replay, health.

Each test runs the service in-process against its own database and a real HTTP receiver on
127.0.0.1 (``LEDGER_WEBHOOK_ALLOW_PRIVATE`` on, as in local development). Signatures are
checked with the ``standardwebhooks`` package, not with the service's own code.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests import factories
from tests.receiver import Answer, Received, Receiver
from tests.support import Tokens, append, client_for, make_tokens, unique_id, wait_for

FAST = {
    "webhook_allow_private": True,
    "webhook_retry_schedule": (0.05, 0.05, 0.05),
    "webhook_timeout_seconds": 2.0,
}


@pytest.fixture
async def service(db_url: str) -> AsyncIterator[tuple[AsyncTestClient[Any], Tokens]]:
    tokens = await make_tokens(db_url)
    async with client_for(db_url, **FAST) as client:
        yield client, tokens


async def register(
    client: AsyncTestClient[Any], tokens: Tokens, url: str, **fields: Any
) -> dict[str, Any]:
    response = await client.post("/webhooks", json={"url": url, **fields}, headers=tokens.header())
    assert response.status_code == 201, response.text
    return dict(response.json())


def verified(secret: str, request: Received) -> Any:
    """Verify a request with the independent library; return the decoded payload."""
    return Webhook(secret).verify(request.body, request.headers)


async def test_registration_shows_the_secret_once(service: Any) -> None:
    client, tokens = service
    with Receiver().running() as receiver:
        created = await register(
            client, tokens, receiver.url, event_types=["valuation_reported"], description="desk"
        )
        assert created["secret"].startswith("whsec_")
        assert len(base64.b64decode(created["secret"].removeprefix("whsec_"))) >= 24
        assert created["status"] == "enabled"
        assert created["event_types"] == ["valuation_reported"]
        shown = (await client.get(f"/webhooks/{created['id']}", headers=tokens.header())).json()
        listed = (await client.get("/webhooks", headers=tokens.header())).json()["webhooks"]
    assert "secret" not in shown and created["secret"] not in json.dumps(listed)
    assert shown["url"] == receiver.url and shown["description"] == "desk"
    assert [w["id"] for w in listed] == [created["id"]]


async def test_deleted_endpoint_is_gone(service: Any) -> None:
    client, tokens = service
    with Receiver().running() as receiver, Receiver().running() as witness:
        created = await register(client, tokens, receiver.url)
        await register(client, tokens, witness.url)
        deleted = await client.delete(f"/webhooks/{created['id']}", headers=tokens.header())
        assert deleted.status_code == 204
        await append(client, tokens, factories.company_registered(unique_id()))
        await wait_for(lambda: _count(witness, 1))  # the event went out to who still listens
        await _settled(client, tokens)
        again = await client.get(f"/webhooks/{created['id']}", headers=tokens.header())
        assert again.status_code == 404
        assert again.headers["content-type"].startswith("application/problem+json")
        twice = await client.delete(f"/webhooks/{created['id']}", headers=tokens.header())
        assert twice.status_code == 404
    assert receiver.snapshot() == []


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({}, "url", 400),
        ({"url": 5}, "url", 400),
        ({"url": "ftp://example.com/hook"}, "url", 422),
        ({"url": "http://user:pw@example.com/hook"}, "url", 422),
        ({"url": "not a url"}, "url", 422),
        ({"url": "https://example.com/" + "a" * 2048}, "url", 400),
        ({"url": "https://example.com/hook", "event_types": ["nope"]}, "event_types[0]", 400),
        ({"url": "https://example.com/hook", "event_types": []}, "event_types", 400),
        ({"url": "https://example.com/hook", "secret": "mine"}, "secret", 400),
        ({"url": "https://example.com/hook", "description": "x" * 501}, "description", 400),
        ({"url": "https://example.com/ho\tok"}, "url", 422),
        ({"url": "https://a..b/hook"}, "url", 422),
        ({"url": ["https://example.com/hook"]}, "url", 400),
        ("https://example.com/hook", "body", 400),
    ],
)
async def test_bad_registrations_name_the_field(
    service: Any, body: dict[str, Any], field: str, status: int
) -> None:
    client, tokens = service
    response = await client.post("/webhooks", json=body, headers=tokens.header())
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert (await client.get("/webhooks", headers=tokens.header())).json()["webhooks"] == []


async def test_webhooks_need_their_scope(service: Any) -> None:
    client, tokens = service
    assert (await client.get("/webhooks")).status_code == 401
    for which in ("read", "write"):
        assert (await client.get("/webhooks", headers=tokens.header(which))).status_code == 403
    assert (await client.get("/webhooks", headers=tokens.header("webhooks"))).status_code == 200


async def test_each_event_arrives_signed_as_get_events_shows_it(service: Any) -> None:
    client, tokens = service
    with Receiver().running() as receiver:
        created = await register(client, tokens, receiver.url)
        company = unique_id()
        receipts = [
            await append(client, tokens, factories.company_registered(company)),
            await append(client, tokens, factories.valuation_reported(company)),
        ]
        await wait_for(lambda: _count(receiver, 2))
        for request, receipt in zip(
            sorted(receiver.snapshot(), key=_position), receipts, strict=True
        ):
            payload = verified(created["secret"], request)
            shown = (
                await client.get(f"/events/{receipt['event_id']}", headers=tokens.header())
            ).json()
            assert payload == {
                "type": shown["type"],
                "timestamp": shown["recorded_at"],
                "data": shown,
            }
            assert request.headers["webhook-id"] == receipt["event_id"]
            assert request.headers["content-type"] == "application/json"


async def test_only_the_chosen_types_are_sent(service: Any) -> None:
    client, tokens = service
    with Receiver().running() as receiver:
        await register(client, tokens, receiver.url, event_types=["valuation_reported"])
        company = unique_id()
        await append(client, tokens, factories.company_registered(company))
        valuation = await append(client, tokens, factories.valuation_reported(company))
        await append(client, tokens, factories.round_announced(company))
        await wait_for(lambda: _count(receiver, 1))
        await _settled(client, tokens)
    assert receiver.ids() == [valuation["event_id"]]


async def test_a_failing_receiver_gets_every_event_after_retries(service: Any) -> None:
    client, tokens = service

    def flaky(request: Received, count: int) -> Answer:
        # every event is refused twice (a 500, then a refusal to wait), then accepted
        seen = sum(
            1
            for r in receiver.snapshot()
            if r.headers["webhook-id"] == request.headers["webhook-id"]
        )
        return Answer(500) if seen == 1 else Answer(503) if seen == 2 else Answer(200)

    with Receiver(flaky).running() as receiver:
        created = await register(client, tokens, receiver.url)
        company = unique_id()
        events = [factories.company_registered(company)] + [
            factories.valuation_reported(company, value=str(10**9 + i)) for i in range(5)
        ]
        for envelope in events:
            await append(client, tokens, envelope)
        await wait_for(lambda: _count(receiver, 18), within=20)
        await _settled(client, tokens)
        ids = receiver.ids()
        for request in receiver.snapshot():
            verified(created["secret"], request)
        page = (
            await client.get(f"/webhooks/{created['id']}/deliveries", headers=tokens.header())
        ).json()
    assert sorted(set(ids)) == sorted(e["event_id"] for e in events)
    assert all(ids.count(event_id) == 3 for event_id in set(ids))  # same webhook-id each time
    assert len(page["deliveries"]) == 6
    for delivery in page["deliveries"]:
        assert delivery["status"] == "succeeded" and delivery["attempts"] == 3
        assert [a["response_code"] for a in delivery["attempt_log"]] == [500, 503, 200]
        assert [a["succeeded"] for a in delivery["attempt_log"]] == [False, False, True]
        assert all(a["duration_ms"] >= 0 for a in delivery["attempt_log"])


async def test_retry_after_is_honoured(service: Any) -> None:
    client, tokens = service

    def busy(_request: Received, count: int) -> Answer:
        return Answer(429, (("Retry-After", "1"),)) if count == 0 else Answer(200)

    with Receiver(busy).running() as receiver:
        await register(client, tokens, receiver.url)
        await append(client, tokens, factories.company_registered(unique_id()))
        await wait_for(lambda: _count(receiver, 2), within=10)
        first, second = receiver.snapshot()
    assert second.at - first.at >= 0.9  # the schedule alone would have waited 0.05 s


async def test_a_delivery_that_keeps_failing_is_failed_then_can_be_resent(service: Any) -> None:
    client, tokens = service
    accepting = False

    def answer(_request: Received, _count: int) -> Answer:
        return Answer(200 if accepting else 500)

    with Receiver(answer).running() as receiver:
        created = await register(client, tokens, receiver.url)
        await append(client, tokens, factories.company_registered(unique_id()))
        deliveries = f"/webhooks/{created['id']}/deliveries"

        async def failed() -> bool:
            page = (
                await client.get(deliveries, headers=tokens.header(), params={"status": "failed"})
            ).json()
            return len(page["deliveries"]) == 1

        await wait_for(failed, within=10)
        assert len(receiver.snapshot()) == 4  # the first attempt and three retries
        health = (await client.get("/health")).json()["webhooks"]
        assert health["failing_endpoints"] == 1
        delivery = (await client.get(deliveries, headers=tokens.header())).json()["deliveries"][0]
        accepting = True
        resent = await client.post(f"{deliveries}/{delivery['id']}/resend", headers=tokens.header())
        assert resent.status_code == 202
        await wait_for(lambda: _count(receiver, 5))
        await _settled(client, tokens)
        delivery = (await client.get(deliveries, headers=tokens.header())).json()["deliveries"][0]
        health = (await client.get("/health")).json()["webhooks"]
    assert delivery["status"] == "succeeded"
    assert [a["response_code"] for a in delivery["attempt_log"]] == [500, 500, 500, 500, 200]
    assert health["failing_endpoints"] == 0
    missing = await client.post(f"{deliveries}/999999/resend", headers=tokens.header())
    assert missing.status_code == 404


async def test_a_pending_delivery_cannot_be_resent(db_url: str) -> None:
    tokens = await make_tokens(db_url)
    slow = {**FAST, "webhook_retry_schedule": (60.0,)}  # the retry waits a minute
    async with client_for(db_url, **slow) as client:
        with (
            Receiver(lambda _r, _c: Answer(500)).running() as receiver,
            Receiver().running() as witness,
        ):
            created = await register(client, tokens, receiver.url)
            await register(client, tokens, witness.url)
            await append(client, tokens, factories.company_registered(unique_id()))
            await wait_for(lambda: _count(receiver, 1))
            deliveries = f"/webhooks/{created['id']}/deliveries"

            async def attempted() -> bool:
                page = (await client.get(deliveries, headers=tokens.header())).json()
                return bool(page["deliveries"][0]["attempt_log"])

            await wait_for(attempted)
            delivery = (await client.get(deliveries, headers=tokens.header())).json()["deliveries"][
                0
            ]
            answer = await client.post(
                f"{deliveries}/{delivery['id']}/resend", headers=tokens.header()
            )
    assert delivery["status"] == "pending" and delivery["next_attempt_at"] is not None
    assert answer.status_code == 409
    assert answer.headers["content-type"].startswith("application/problem+json")


async def test_a_410_disables_the_endpoint_until_enabled(service: Any) -> None:
    client, tokens = service
    gone = True

    def answer(_request: Received, _count: int) -> Answer:
        return Answer(410 if gone else 200)

    with Receiver(answer).running() as receiver, Receiver().running() as witness:
        created = await register(client, tokens, receiver.url)
        await register(client, tokens, witness.url)
        company = unique_id()
        first = await append(client, tokens, factories.company_registered(company))
        await wait_for(lambda: _count(receiver, 1))

        async def disabled() -> bool:
            shown = (await client.get(f"/webhooks/{created['id']}", headers=tokens.header())).json()
            return bool(shown["status"] == "disabled")

        await wait_for(disabled)
        later = await append(client, tokens, factories.valuation_reported(company))
        # the 410 failed its delivery in the same statement that disabled the endpoint (no
        # retry is scheduled), and the witness shows the later event went out to the others
        await wait_for(lambda: _count(witness, 2))
        health = (await client.get("/health")).json()["webhooks"]
        assert health["disabled_endpoints"] == 1
        assert receiver.ids() == [first["event_id"]]  # no retry after a 410, nothing new sent
        gone = False
        enabled = await client.post(f"/webhooks/{created['id']}/enable", headers=tokens.header())
        assert enabled.status_code == 200 and enabled.json()["status"] == "enabled"
        await wait_for(lambda: _count(receiver, 3))  # the message the 410 failed, and later
    assert sorted(receiver.ids()[1:]) == sorted([first["event_id"], later["event_id"]])


async def test_during_a_rotation_both_secrets_verify(service: Any) -> None:
    client, tokens = service
    with Receiver().running() as receiver:
        created = await register(client, tokens, receiver.url)
        path = f"/webhooks/{created['id']}/rotate-secret"
        rotated = (
            await client.post(path, headers=tokens.header(), json={"grace_period_seconds": 3600})
        ).json()
        assert rotated["secret"] != created["secret"] and rotated["previous_secret_expires_at"]
        await append(client, tokens, factories.company_registered(unique_id()))
        await wait_for(lambda: _count(receiver, 1))
        during = receiver.snapshot()[0]
        assert len(during.headers["webhook-signature"].split(" ")) == 2
        verified(created["secret"], during)
        verified(rotated["secret"], during)
        # with no grace the old secret stops at once
        again = (
            await client.post(path, headers=tokens.header(), json={"grace_period_seconds": 0})
        ).json()
        assert again["previous_secret_expires_at"] is None
        await append(client, tokens, factories.company_registered(unique_id()))
        await wait_for(lambda: _count(receiver, 2))
        after = receiver.snapshot()[1]
    verified(again["secret"], after)
    with pytest.raises(WebhookVerificationError):
        verified(rotated["secret"], after)
    with pytest.raises(WebhookVerificationError):
        verified(created["secret"], after)


async def test_rotation_refuses_a_bad_grace_period(service: Any) -> None:
    client, tokens = service
    created = await register(client, tokens, "http://127.0.0.1:9/hook")
    path = f"/webhooks/{created['id']}/rotate-secret"
    for value in (-1, 10**9, "1h"):
        answer = await client.post(
            path, headers=tokens.header(), json={"grace_period_seconds": value}
        )
        assert answer.status_code == 400
        assert answer.json()["errors"][0]["field"] == "grace_period_seconds"
    missing = await client.post(
        "/webhooks/wh_" + "0" * 32 + "/rotate-secret", headers=tokens.header()
    )
    assert missing.status_code == 404


async def test_replay_sends_every_matching_event_again(service: Any) -> None:
    client, tokens = service
    with Receiver().running() as receiver:
        created = await register(client, tokens, receiver.url, event_types=["company_registered"])
        companies = [unique_id() for _ in range(3)]
        receipts = [
            await append(client, tokens, factories.company_registered(c)) for c in companies
        ]
        await append(client, tokens, factories.valuation_reported(companies[0]))
        await wait_for(lambda: _count(receiver, 3))
        await _settled(client, tokens)
        after = receipts[0]["position"]
        replay = await client.post(
            f"/webhooks/{created['id']}/replay",
            headers=tokens.header(),
            json={"after_position": after},
        )
        assert replay.status_code == 202, replay.text
        assert replay.json()["queued"] == 2 and replay.json()["complete"] is True
        await wait_for(lambda: _count(receiver, 5))
        ids = receiver.ids()
        bad = await client.post(
            f"/webhooks/{created['id']}/replay",
            headers=tokens.header(),
            json={"after_position": -1},
        )
    assert ids[3:] == [receipts[1]["event_id"], receipts[2]["event_id"]] or sorted(
        ids[3:]
    ) == sorted([receipts[1]["event_id"], receipts[2]["event_id"]])
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "after_position"


async def test_health_shows_the_dispatcher(service: Any) -> None:
    client, tokens = service
    with Receiver().running() as receiver:
        await register(client, tokens, receiver.url)
        await append(client, tokens, factories.company_registered(unique_id()))
        await wait_for(lambda: _count(receiver, 1))
        await _settled(client, tokens)
        health = (await client.get("/health")).json()
    assert health["webhooks"] == {
        "position": health["head_position"],
        "lag": 0,
        "pending_deliveries": 0,
        "failing_endpoints": 0,
        "disabled_endpoints": 0,
    }


def _position(request: Received) -> int:
    return int(json.loads(request.body)["data"]["position"])


async def _count(receiver: Receiver, n: int) -> bool:
    return len(receiver.snapshot()) >= n


async def _settled(client: AsyncTestClient[Any], tokens: Tokens) -> None:
    """Wait until nothing is pending and every cursor has reached the head."""

    async def quiet() -> bool:
        webhooks = (await client.get("/health")).json()["webhooks"]
        return bool(webhooks["pending_deliveries"] == 0 and webhooks["lag"] == 0)

    await wait_for(quiet)


async def test_an_endpoint_failing_for_too_long_is_disabled(db_url: str) -> None:
    tokens = await make_tokens(db_url)
    settings = {
        **FAST,
        "webhook_retry_schedule": (0.1,) * 50,
        "webhook_disable_after_seconds": 0.5,  # five days in production
    }
    async with client_for(db_url, **settings) as client:
        with (
            Receiver(lambda _r, _c: Answer(500)).running() as receiver,
            Receiver().running() as witness,
        ):
            created = await register(client, tokens, receiver.url)
            await register(client, tokens, witness.url)
            await append(client, tokens, factories.company_registered(unique_id()))

            async def disabled() -> bool:
                shown = await client.get(f"/webhooks/{created['id']}", headers=tokens.header())
                return bool(shown.json()["status"] == "disabled")

            await wait_for(disabled, within=15)
            shown = (await client.get(f"/webhooks/{created['id']}", headers=tokens.header())).json()
            attempts = len(receiver.snapshot())
            # a later event reaches the witness: dispatch went on, and nothing more went to it
            await append(client, tokens, factories.company_registered(unique_id()))
            await wait_for(lambda: _count(witness, 2))
            assert len(receiver.snapshot()) == attempts
    assert shown["disabled_reason"].startswith("no successful delivery since")
    assert shown["failing_since"] is not None and shown["last_success_at"] is None


async def test_an_unreadable_retry_after_is_a_failed_attempt_like_any_other(service: Any) -> None:
    client, tokens = service

    def odd(_request: Received, count: int) -> Answer:
        return Answer(503, (("Retry-After", "\u00b2"),)) if count == 0 else Answer(200)

    with Receiver(odd).running() as receiver:
        created = await register(client, tokens, receiver.url)
        await append(client, tokens, factories.company_registered(unique_id()))
        await wait_for(lambda: _count(receiver, 2))
        await _settled(client, tokens)
        page = await client.get(f"/webhooks/{created['id']}/deliveries", headers=tokens.header())
    [delivery] = page.json()["deliveries"]
    assert [a["response_code"] for a in delivery["attempt_log"]] == [503, 200]


async def test_a_receiver_that_trickles_its_answer_is_cut_off_at_the_time_limit(
    db_url: str,
) -> None:
    tokens = await make_tokens(db_url)
    settings = {**FAST, "webhook_timeout_seconds": 1.0, "webhook_retry_schedule": (60.0,)}
    async with client_for(db_url, **settings) as client:
        with Receiver(lambda _r, _c: Answer(200, trickle_seconds=4)).running() as receiver:
            created = await register(client, tokens, receiver.url)
            await append(client, tokens, factories.company_registered(unique_id()))
            deliveries = f"/webhooks/{created['id']}/deliveries"

            async def attempted() -> bool:
                page = (await client.get(deliveries, headers=tokens.header())).json()
                return bool(page["deliveries"] and page["deliveries"][0]["attempt_log"])

            await wait_for(attempted, within=10)
            [delivery] = (await client.get(deliveries, headers=tokens.header())).json()[
                "deliveries"
            ]
    [attempt] = delivery["attempt_log"]
    assert not attempt["succeeded"] and "within 1 s" in attempt["error"]
    assert attempt["duration_ms"] < 2000  # each byte came within httpx's read timeout
    assert delivery["status"] == "pending" and len(receiver.snapshot()) == 1
