"""Appending over HTTP: receipts, idempotent retries, expected versions, amendments."""

from __future__ import annotations

import asyncpg

from tests import factories as f
from tests.support import Tokens, client_for, connected, count_events, unique_id


async def test_single_append_returns_a_receipt_and_reads_back(db_url: str, tokens: Tokens) -> None:
    async with client_for(db_url) as client:
        # given
        envelope = f.company_registered(unique_id())
        # when
        response = await client.post("/events", json=envelope, headers=tokens.header("write"))
        # then
        assert response.status_code == 201, response.text
        receipt = response.json()
        assert receipt["event_id"] == envelope["event_id"]
        assert receipt["stream"] == f"company:{envelope['data']['company_id']}"
        assert (receipt["stream_version"], receipt["position"]) == (1, 1)
        shown = (
            await client.get(f"/events/{receipt['event_id']}", headers=tokens.header("read"))
        ).json()
        assert shown["data"] == envelope["data"]
        assert shown["hash"] == receipt["hash"]
        assert shown["recorded_at"] == receipt["recorded_at"]


async def test_retry_with_same_content_returns_original_receipt(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        envelope = f.company_registered(unique_id())
        first = await client.post("/events", json=envelope, headers=tokens.header("write"))
        second = await client.post("/events", json=envelope, headers=tokens.header("write"))
        assert (first.status_code, second.status_code) == (201, 200)
        assert second.json() == first.json()
        assert await count_events(db_url) == 1


async def test_retry_with_other_content_conflicts(db_url: str, tokens: Tokens) -> None:
    async with client_for(db_url) as client:
        envelope = f.company_registered(unique_id())
        await client.post("/events", json=envelope, headers=tokens.header("write"))
        changed = {**envelope, "data": {**envelope["data"], "name": "Another name"}}
        response = await client.post("/events", json=changed, headers=tokens.header("write"))
        assert response.status_code == 409
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"][0]["field"] == "event_id"
        assert await count_events(db_url) == 1


async def test_wrong_expected_version_conflicts_with_current_version(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        company = unique_id()
        await client.post(
            "/events", json=f.company_registered(company), headers=tokens.header("write")
        )
        stale = f.valuation_reported(company, expected_version=0)
        response = await client.post("/events", json=stale, headers=tokens.header("write"))
        assert response.status_code == 409
        assert response.json()["current_version"] == 1
        fresh = f.valuation_reported(company, expected_version=1)
        ok = await client.post("/events", json=fresh, headers=tokens.header("write"))
        assert ok.status_code == 201
        assert ok.json()["stream_version"] == 2


async def test_batch_counts_expected_versions_on_from_the_first(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        company = unique_id()
        batch = {
            "events": [
                f.company_registered(company, expected_version=0),
                f.valuation_reported(company, expected_version=1),
                f.round_announced(company),
                f.valuation_reported(company, expected_version=3),
            ]
        }
        response = await client.post("/events", json=batch, headers=tokens.header("write"))
        assert response.status_code == 201, response.text
        receipts = response.json()["receipts"]
        assert [r["stream_version"] for r in receipts] == [1, 2, 3, 4]
        assert [r["position"] for r in receipts] == [1, 2, 3, 4]
        again = await client.post("/events", json=batch, headers=tokens.header("write"))
        assert again.status_code == 200
        assert again.json()["receipts"] == receipts


async def test_batch_is_all_or_none(db_url: str, tokens: Tokens) -> None:
    async with client_for(db_url) as client:
        company = unique_id()
        batch = {
            "events": [
                f.company_registered(company),
                f.valuation_reported(company, expected_version=5),
            ]
        }
        response = await client.post("/events", json=batch, headers=tokens.header("write"))
        assert response.status_code == 409
        assert response.json()["errors"][0]["field"] == "events[1].expected_version"
        assert await count_events(db_url) == 0


async def test_correction_and_retraction_join_their_targets_stream(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        company = unique_id()
        valuation = f.valuation_reported(company, "500000000")
        await client.post("/events", json=valuation, headers=tokens.header("write"))
        replacement = {**valuation["data"], "valuation": {"value": "520000000", "currency": "USD"}}
        correction = f.corrected(valuation["event_id"], replacement)
        fixed = await client.post("/events", json=correction, headers=tokens.header("write"))
        assert fixed.status_code == 201, fixed.text
        assert fixed.json()["stream"] == f"company:{company}"
        # a correction of the correction carries the original fact's type
        again = f.corrected(correction["event_id"], {**replacement, "basis": "post-money"})
        assert (
            await client.post("/events", json=again, headers=tokens.header("write"))
        ).status_code == 201
        withdrawn = await client.post(
            "/events", json=f.retracted(valuation["event_id"]), headers=tokens.header("write")
        )
        assert withdrawn.status_code == 201
        assert withdrawn.json()["stream_version"] == 4


async def test_amendments_with_bad_targets_are_unprocessable(db_url: str, tokens: Tokens) -> None:
    async with client_for(db_url) as client:
        company = unique_id()
        registered = f.company_registered(company)
        await client.post("/events", json=registered, headers=tokens.header("write"))
        missing = f.retracted("6f1c1c1e-0000-4000-8000-000000000000")
        wrong_type = f.corrected(registered["event_id"], f.valuation_reported(company)["data"])
        for envelope, field in [
            (missing, "data.target_event_id"),
            (wrong_type, "data.data.valuation"),
        ]:
            response = await client.post("/events", json=envelope, headers=tokens.header("write"))
            assert response.status_code == 422, response.text
            assert response.json()["errors"][0]["field"] == field
        assert await count_events(db_url) == 1


async def test_event_log_refuses_update_delete_and_truncate(db_url: str, tokens: Tokens) -> None:
    async with client_for(db_url) as client:
        await client.post(
            "/events", json=f.company_registered(unique_id()), headers=tokens.header("write")
        )
    async with connected(db_url) as conn:
        for statement in [
            "UPDATE events SET type = 'x'",
            "DELETE FROM events",
            "TRUNCATE events",
        ]:
            try:
                await conn.execute(statement)
            except asyncpg.InsufficientPrivilegeError as exc:
                assert "append-only" in str(exc)
            else:
                raise AssertionError(f"{statement} was allowed")
        assert await conn.fetchval("SELECT count(*) FROM events") == 1
