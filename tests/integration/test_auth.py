"""Bearer tokens: 401 without a valid one, 403 without the scope, revocation at once."""

from __future__ import annotations

import uuid

from httpx import Response

from service.keys import create_key, revoke_key
from tests import factories as f
from tests.support import Tokens, client_for, connected, count_events, unique_id, wait_for

PROTECTED = [
    ("POST", "/events"),
    ("GET", "/events"),
    ("GET", f"/events/{uuid.UUID(int=1)}"),
    ("GET", "/streams/company:acme/events"),
    ("GET", "/ledger/digest"),
    ("GET", "/ledger/verify"),
]

BAD_HEADERS = {
    "no header": {},
    "empty header": {"Authorization": ""},
    "basic scheme": {"Authorization": "Basic dXNlcjpwYXNz"},
    "bearer without token": {"Authorization": "Bearer "},
    "token without scheme": {"Authorization": "ldg_0123456789ab_secret"},
    "unknown key id": {"Authorization": "Bearer ldg_0123456789ab_secret"},
    "not a ledger token": {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x"},
}


def key_id_of(token: str) -> str:
    return token.removeprefix("ldg_").split("_", 1)[0]


def assert_problem(response: Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status
    assert problem["title"] and problem["detail"]


async def test_every_protected_route_refuses_a_missing_or_bad_token_with_401(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        # given
        tampered = {"Authorization": f"Bearer {tokens.all[:-6]}AAAAAA"}
        wrong_key = {"Authorization": f"Bearer ldg_{key_id_of(tokens.read)}_{tokens.all[-43:]}"}
        bad = {**BAD_HEADERS, "tampered secret": tampered, "another key's secret": wrong_key}
        for method, path in PROTECTED:
            for name, headers in bad.items():
                # when
                body = f.company_registered(unique_id()) if method == "POST" else None
                response = await client.request(method, path, json=body, headers=headers)
                # then
                assert response.status_code == 401, (method, path, name, response.text)
                assert_problem(response, 401)
                assert response.headers["www-authenticate"].startswith("Bearer")
        assert await count_events(db_url) == 0


MISSING_SCOPE = [
    ("read", "POST", "/events", "events:write"),
    ("webhooks", "POST", "/events", "events:write"),
    ("write", "GET", "/events", "events:read"),
    ("write", "GET", f"/events/{uuid.UUID(int=1)}", "events:read"),
    ("write", "GET", "/streams/company:acme/events", "events:read"),
    ("webhooks", "GET", "/events", "events:read"),
    ("read", "GET", "/ledger/verify", "'audit' scope"),
    ("read", "GET", "/ledger/digest", "'audit' scope"),
    ("write", "GET", "/ledger/verify", "'audit' scope"),
    ("webhooks", "GET", "/ledger/verify", "'audit' scope"),
    ("audit", "POST", "/events", "events:write"),
    ("audit", "GET", "/companies", "events:read"),
    ("audit", "GET", "/companies/acme", "events:read"),
    ("audit", "GET", "/export-rules", "events:read"),
    ("audit", "GET", "/webhooks", "webhooks:manage"),
]


async def test_a_token_lacking_the_scope_is_refused_with_403_naming_it(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        for token, method, path, scope in MISSING_SCOPE:
            # given
            body = f.company_registered(unique_id()) if method == "POST" else None
            # when
            response = await client.request(method, path, json=body, headers=tokens.header(token))
            # then
            assert response.status_code == 403, (token, method, path, response.text)
            assert_problem(response, 403)
            assert scope in response.json()["detail"], (token, method, path)
    assert await count_events(db_url) == 0


async def test_each_scope_opens_its_own_routes_and_admin_opens_all(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        # given
        company = unique_id()
        # when
        appended = await client.post(
            "/events", json=f.company_registered(company), headers=tokens.header("write")
        )
        # then
        assert appended.status_code == 201, appended.text
        event_id = appended.json()["event_id"]
        for token in ("read", "admin"):
            for path in ("/events", f"/events/{event_id}", f"/streams/company:{company}/events"):
                response = await client.get(path, headers=tokens.header(token))
                assert response.status_code == 200, (token, path, response.text)
        for path in ("/ledger/digest", "/ledger/verify"):
            response = await client.get(path, headers=tokens.header("admin"))
            assert response.status_code == 200, (path, response.text)
        by_admin = await client.post(
            "/events", json=f.valuation_reported(company), headers=tokens.header("admin")
        )
        assert by_admin.status_code == 201, by_admin.text


async def test_an_auditor_reads_the_log_and_checks_its_integrity_without_admin(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        # given a log of one event
        company = unique_id()
        appended = await client.post(
            "/events", json=f.company_registered(company), headers=tokens.header("write")
        )
        event_id = appended.json()["event_id"]
        # when an auditor reads it, event by event, and checks it
        reads = {
            path: await client.get(path, headers=tokens.header("audit"))
            for path in (
                "/events",
                f"/events/{event_id}",
                f"/streams/company:{company}/events",
                "/ledger/digest",
                "/ledger/verify",
            )
        }
    # then each answers
    for path, response in reads.items():
        assert response.status_code == 200, (path, response.text)
    assert reads["/events"].json()["events"][0]["event_id"] == event_id
    assert reads["/ledger/verify"].json()["intact"] is True


async def test_the_scheme_name_is_case_insensitive(db_url: str, tokens: Tokens) -> None:
    async with client_for(db_url) as client:
        for scheme in ("bearer", "BEARER", "Bearer"):
            response = await client.get(
                "/events", headers={"Authorization": f"{scheme} {tokens.read}"}
            )
            assert response.status_code == 200, (scheme, response.text)


async def test_health_and_the_openapi_document_need_no_token(db_url: str) -> None:
    async with client_for(db_url) as client:
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/schema/openapi.json")).status_code == 200


async def revoke(url: str, key_id: str) -> None:
    async with connected(url) as conn:
        await revoke_key(conn, key_id)


async def test_a_revoked_key_is_refused_by_the_running_app_without_a_restart(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        # given a key the app has already accepted, and so holds in its cache
        header = tokens.header("read")
        assert (await client.get("/events", headers=header)).status_code == 200
        # when
        await revoke(db_url, key_id_of(tokens.read))

        # then it is refused long before the cache's 5 s expiry could have dropped it
        async def refused() -> bool:
            return (await client.get("/events", headers=header)).status_code == 401

        await wait_for(refused, within=2.0)
        assert_problem(await client.get("/events", headers=header), 401)
        assert (await client.get("/events", headers=tokens.header("all"))).status_code == 200


async def test_revocation_while_the_notification_connection_is_down_is_honoured(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        # given a cached key, and the app's notification connection cut
        header = tokens.header("read")
        assert (await client.get("/events", headers=header)).status_code == 200
        async with connected(db_url) as conn:
            cut = await conn.fetchval(
                """SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                   WHERE datname = current_database() AND query LIKE 'LISTEN%'"""
            )
            assert cut == 1
            # when the key is revoked while nobody listens (the notification is lost)
            await revoke_key(conn, key_id_of(tokens.read))

        # then the reconnected listener clears the cache, well before the entry would expire
        async def refused() -> bool:
            return (await client.get("/events", headers=header)).status_code == 401

        await wait_for(refused, within=3.0)
        assert (await client.get("/events", headers=tokens.header("all"))).status_code == 200


async def test_a_key_revoked_before_first_use_is_refused(db_url: str, tokens: Tokens) -> None:
    await revoke(db_url, key_id_of(tokens.write))
    async with client_for(db_url) as client:
        response = await client.post(
            "/events", json=f.company_registered(unique_id()), headers=tokens.header("write")
        )
        assert_problem(response, 401)
    assert await count_events(db_url) == 0


async def test_the_api_keys_table_stores_no_plaintext_token(db_url: str, tokens: Tokens) -> None:
    # given
    async with connected(db_url) as conn:
        key_id, token = await create_key(conn, "analyst", ["events:read", "events:write"])
        # when
        rows = await conn.fetch("SELECT * FROM api_keys")
        dump = await conn.fetchval("SELECT string_agg(api_keys::text, E'\\n') FROM api_keys")
    # then
    issued = [(t, t.split("_", 2)[2]) for t in (token, tokens.read, tokens.write, tokens.all)]
    assert len(rows) == 7  # one per scope, one with all, the analyst's
    for row in rows:
        for column, value in row.items():
            raw = bytes(value) if isinstance(value, bytes) else str(value).encode()
            for whole, secret in issued:
                assert whole.encode() not in raw, column
                assert secret.encode() not in raw, column
    for whole, secret in issued:
        assert whole not in dump and secret not in dump
    mine = next(row for row in rows if row["key_id"] == key_id)
    assert sorted(mine["scopes"]) == ["events:read", "events:write"]
