"""Events appended before fact keys were stored get theirs when the migrations run."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
import pytest

from events.decoding import decode_append_body
from events.fact_fill import fill_fact_keys
from events.facts import envelope_fact
from events.records import prepare
from events.writer import GroupCommitter
from tests import factories as f
from tests.support import connected, ledger, unique_id


@pytest.fixture
async def committer(db_url: str) -> AsyncIterator[GroupCommitter]:
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    assert pool is not None
    writer = GroupCommitter(pool)
    writer.start()
    yield writer
    await writer.stop()
    await pool.close()


def envelopes() -> list[dict[str, Any]]:
    """Reports of every keyed type, a second report of the round, and amendments."""
    company = unique_id()
    valuation = f.valuation_reported(company)
    round_ = f.round_announced(company)
    rank = f.retracted(round_["event_id"], type="report_ranked")
    rank["data"] = {**rank["data"], "rank": "preferred"}
    return [
        f.company_registered(company),
        round_,
        f.round_announced(company, source={"name": "Report 001"}),
        valuation,
        f.export_rule(unique_id("rule")),
        f.retracted(valuation["event_id"]),
        rank,
    ]


async def append_without_keys(committer: GroupCommitter, bodies: list[dict[str, Any]]) -> None:
    """Append as the writer did before keys were stored: rows whose key is NULL."""
    for body in bodies:
        decoded, is_batch = decode_append_body(msgspec.json.encode(body))
        prepared = prepare(decoded, is_batch)
        for event in prepared:
            event.fact = None
        await committer.append(prepared, is_batch)


def expected_keys(bodies: list[dict[str, Any]]) -> dict[uuid.UUID, str | None]:
    found = {}
    for body in bodies:
        [envelope], _ = decode_append_body(msgspec.json.encode(body))
        found[uuid.UUID(body["event_id"])] = envelope_fact(envelope)
    return found


async def stored(db_url: str) -> dict[uuid.UUID, tuple[bytes, str | None]]:
    async with connected(db_url) as conn:
        rows = await conn.fetch("SELECT event_id, hash, fact FROM events ORDER BY position")
    return {r["event_id"]: (bytes(r["hash"]), r["fact"]) for r in rows}


async def test_ledger_migrate_fills_in_the_keys_and_leaves_the_chain_intact(
    db_url: str, committer: GroupCommitter
) -> None:
    # given events appended without their keys
    bodies = envelopes()
    await append_without_keys(committer, bodies)
    before = await stored(db_url)
    assert {fact for _, fact in before.values()} == {None}
    # when the migrations run
    migrated = ledger(db_url, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    # then each report has the key it would have been appended with; amendments have none
    after = await stored(db_url)
    assert {event_id: fact for event_id, (_, fact) in after.items()} == expected_keys(bodies)
    # and no hash changed, and the chain verifies
    assert {event_id: digest for event_id, (digest, _) in after.items()} == {
        event_id: digest for event_id, (digest, _) in before.items()
    }
    verified = ledger(db_url, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


async def test_the_fill_goes_on_where_it_stopped_and_then_finds_nothing_to_do(
    db_url: str, committer: GroupCommitter
) -> None:
    # given events without keys, and a fill stopped after its first batch of two
    await append_without_keys(committer, envelopes())

    def stop(done: int, total: int) -> None:
        raise KeyboardInterrupt

    async with connected(db_url) as conn:
        with pytest.raises(KeyboardInterrupt):
            await fill_fact_keys(conn, stop, batch=2)
        # when it runs again, and again
        again = await fill_fact_keys(conn, batch=2)
        last = await fill_fact_keys(conn, batch=2)
    # then the first batch was kept, the second run did the rest and the third nothing
    assert (again, last) == (3, 0)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET fact = 'x' WHERE type = 'company_registered'",  # a key stored
        "UPDATE events SET fact = 'x', data = data WHERE fact IS NULL",  # an amendment's
        "UPDATE events SET type = 'x', fact = 'y'",
        "DELETE FROM events",
    ],
)
async def test_a_session_filling_keys_may_change_nothing_else(
    db_url: str, committer: GroupCommitter, statement: str
) -> None:
    # given a log with keys (and amendments without)
    bodies = envelopes()
    for body in bodies:
        decoded, is_batch = decode_append_body(msgspec.json.encode(body))
        await committer.append(prepare(decoded, is_batch), is_batch)
    async with connected(db_url) as conn:
        # when a session that says it fills keys changes anything else, then it is refused
        async with conn.transaction():
            await conn.execute("SET LOCAL ledger.fill_fact_keys = 'on'")
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(statement)
