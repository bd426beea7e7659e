"""The log and its head refuse to be rewritten in every session mode, replica mode included."""

from __future__ import annotations

import asyncpg
import pytest

from tests import factories as f
from tests.support import Tokens, append, client_for, unique_id

REFUSED = [
    "UPDATE events SET type = 'x'",
    "DELETE FROM events",
    "TRUNCATE events",
    "DELETE FROM ledger_head",
    "TRUNCATE ledger_head",
    "UPDATE ledger_head SET position = position - 1",
]


@pytest.mark.parametrize("statement", REFUSED)
async def test_replica_mode_does_not_switch_the_guard_off(
    db_url: str, tokens: Tokens, statement: str
) -> None:
    # given a log holding two events
    async with client_for(db_url) as client:
        company = unique_id()
        await append(client, tokens, f.company_registered(company))
        await append(client, tokens, f.valuation_reported(company))
    # when a superuser session that fires no ordinary trigger tries to rewrite it
    conn = await asyncpg.connect(db_url)
    try:
        assert await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        await conn.execute("SET session_replication_role = replica")
        # then the database refuses, and nothing changed
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute(statement)
        assert await conn.fetchval("SELECT count(*) FROM events") == 2
        assert await conn.fetchval("SELECT position FROM ledger_head") == 2
    finally:
        await conn.close()


async def test_the_head_still_moves_forward(db_url: str) -> None:
    # given a superuser session in replica mode
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("SET session_replication_role = replica")
        # when the head moves forward (as a writer moves it), then it is allowed
        await conn.execute("UPDATE ledger_head SET position = position + 1")
        assert await conn.fetchval("SELECT position FROM ledger_head") == 1
    finally:
        await conn.close()
