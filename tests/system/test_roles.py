"""The service runs as a role that cannot rewrite history: ``ledger grants`` gives just enough."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from tests import factories
from tests.receiver import Receiver
from tests.support import ServerProcess, connected, ledger, make_tokens, unique_id, wait_for


def as_role(url: str, role: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.split("@", 1)[1]
    return urlunsplit((parts.scheme, f"{role}@{host}", parts.path, parts.query, ""))


async def test_the_service_works_as_a_role_that_cannot_change_events(
    db_url: str, ledger_processes: Callable[..., ServerProcess]
) -> None:
    role = f"ledger_app_{uuid.uuid4().hex[:8]}"
    printed = ledger(db_url, "grants", role)
    assert printed.returncode == 0, printed.stderr
    async with connected(db_url) as admin:
        await admin.execute(f"CREATE ROLE {role} LOGIN")
        await admin.execute(printed.stdout)
    tokens = await make_tokens(db_url)
    restricted = as_role(db_url, role)
    server = ledger_processes(restricted, LEDGER_WEBHOOK_ALLOW_PRIVATE="1")
    try:
        with Receiver().running() as receiver:
            server.start()
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
                hook = await http.post(
                    "/webhooks", json={"url": receiver.url}, headers=tokens.header()
                )
                assert hook.status_code == 201, hook.text
                company = unique_id()
                appended = await http.post(
                    "/events",
                    json={
                        "events": [
                            factories.company_registered(company),
                            factories.round_announced(company),
                        ]
                    },
                    headers=tokens.header(),
                )
                assert appended.status_code == 201, appended.text
                last = appended.json()["receipts"][-1]["position"]
                portfolio = await http.get(
                    "/investors/alibaba/portfolio",
                    params={"min_position": last},
                    headers=tokens.header(),
                )
                assert portfolio.status_code == 200, portfolio.text
                verified = await http.get("/ledger/verify", headers=tokens.header())
                assert verified.json()["intact"] is True

                async def delivered() -> bool:
                    return len(receiver.snapshot()) == 2

                await wait_for(delivered)
        # the owner rebuilds the read models: the service role keeps its access to them
        rebuilt = ledger(db_url, "projections", "rebuild")
        assert rebuilt.returncode == 0, rebuilt.stderr
        async with connected(restricted) as conn:
            assert await conn.fetchval("SELECT count(*) FROM rm_investor_companies") > 0
            await conn.execute("DELETE FROM rm_companies WHERE false")
            for statement in (
                "UPDATE events SET type = type",
                "DELETE FROM events",
                "TRUNCATE events",
                "ALTER TABLE events DISABLE TRIGGER USER",
                "CREATE TABLE sneaky (x int)",
            ):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(statement)
    finally:
        server.terminate()
        async with connected(db_url) as admin:
            await admin.execute(f"DROP OWNED BY {role}")
            await admin.execute(f"DROP ROLE {role}")
