"""Migration 0009 gives every amendment already in the log the fact at the bottom of its chain."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from events.migrate import available_migrations
from tests.support import with_database

ROOTS = 9


@pytest.fixture
async def log_before_roots(server_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A database migrated up to, not including, the migration that adds the roots."""
    name = f"roots_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f"CREATE DATABASE {name}")
    conn = await asyncpg.connect(with_database(server_url, name))
    try:
        for migration in available_migrations():
            if migration.version < ROOTS:
                await conn.execute(migration.sql)
        yield conn
    finally:
        await conn.close()
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


async def test_amendments_recorded_before_the_migration_get_their_root(
    log_before_roots: asyncpg.Connection,
) -> None:
    # given a fact, a correction, a correction of that, and a retraction of the latter
    conn = log_before_roots
    fact, first, second, retraction, other = (uuid.uuid4() for _ in range(5))
    rows = [
        (1, fact, "valuation_reported", None),
        (2, first, "event_corrected", fact),
        (3, second, "event_corrected", first),
        (4, retraction, "event_retracted", second),
        (5, other, "company_registered", None),
    ]
    for position, event_id, type_, target in rows:
        await conn.execute(
            """INSERT INTO events (position, event_id, stream, stream_version, type,
                   effective_date, recorded_at, source, data, target_event_id, hash)
               VALUES ($1::bigint, $2, 'company:co-a', $1::integer, $3, '2023-01-01', now(),
                       '{}', '{}', $4, '\\x00')""",
            position,
            event_id,
            type_,
            target,
        )

    # when the migration runs
    (migration,) = [m for m in available_migrations() if m.version == ROOTS]
    async with conn.transaction():
        await conn.execute(migration.sql)

    # then each amendment names the fact, facts name nothing, and the log is append-only again
    found = dict(await conn.fetch("SELECT event_id, root_event_id FROM events"))
    assert found == {fact: None, first: fact, second: fact, retraction: fact, other: None}
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await conn.execute("UPDATE events SET root_event_id = NULL")
