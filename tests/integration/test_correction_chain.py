"""Planning an amendment costs the same whatever the length of the chain it amends."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from events import commit
from tests.factories import corrected, valuation_reported
from tests.support import Tokens, append, client_for, unique_id

CHAIN = 3_000
BATCH = 500


class CountingConnection:
    """A connection that counts the statements sent through it and the rows they return."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self.statements = 0
        self.rows = 0

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        self.statements += 1
        rows: list[asyncpg.Record] = await self._conn.fetch(query, *args)
        self.rows += len(rows)
        return rows


async def test_planning_a_correction_of_a_long_chain_reads_a_bounded_amount(
    db_url: str, tokens: Tokens
) -> None:
    # given a valuation corrected thousands of times, each correction amending the previous one
    company = unique_id()
    original = valuation_reported(company)
    last = original["event_id"]
    async with client_for(db_url) as client:
        await append(client, tokens, original)
        for _ in range(CHAIN // BATCH):
            batch = []
            for i in range(BATCH):
                value = {"value": str(1_000_000 + i), "currency": "USD"}
                batch.append(corrected(last, {**original["data"], "valuation": value}))
                last = batch[-1]["event_id"]
            await append(client, tokens, {"events": batch})

    # when the writer reads what a further correction of the newest link needs
    conn = await asyncpg.connect(db_url)
    try:
        counting = CountingConnection(conn)
        state = await commit.snapshot(counting, [uuid.UUID(last)], [])  # type: ignore[arg-type]
    finally:
        await conn.close()

    # then it took one statement and a handful of rows, and knows the fact at the bottom
    assert counting.statements == 1
    assert counting.rows <= 3
    target = state.known[uuid.UUID(last)]
    assert target.root_type == "valuation_reported"
    assert target.root_id == uuid.UUID(original["event_id"])
    assert state.versions[f"company:{company}"] == CHAIN + 1
