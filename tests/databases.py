"""Fresh databases for tests: cloned from the migrated template, or reused once set back to it.

Cloning costs PostgreSQL about a tenth of a second of CPU (it copies the catalogs), more than
most tests take. So a database a test is done with is set back to the template's rows and kept
for the next test, but only if its schema is still the template's (the same fingerprint of its
catalogs: tables, columns, defaults, constraints, indexes, triggers and their modes, functions,
grants, settings), no other session is left in it, and the server lets us (a superuser).
Anything else is dropped, and the next test gets a clone.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from tests.support import connected, with_database

# Everything a test could change about a database other than its rows, as one digest.
FINGERPRINT = """
WITH public_rel AS (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)
SELECT md5(string_agg(x, E'\\n' ORDER BY x)) FROM (
    SELECT format('rel %s %s %s %s', relname, relkind, relacl, reloptions)
    FROM pg_class WHERE oid IN (SELECT oid FROM public_rel)
    UNION ALL
    SELECT format('att %s %s %s %s %s %s %s', attrelid::regclass, attname, atttypid::regtype,
                  attnotnull, attisdropped, attgenerated, attacl)
    FROM pg_attribute WHERE attrelid IN (SELECT oid FROM public_rel) AND attnum > 0
    UNION ALL
    SELECT format('def %s %s', adrelid::regclass, pg_get_expr(adbin, adrelid)) FROM pg_attrdef
    UNION ALL
    SELECT format('con %s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
    FROM pg_constraint WHERE connamespace = 'public'::regnamespace
    UNION ALL
    SELECT format('idx %s', pg_get_indexdef(indexrelid)) FROM pg_index
    WHERE indrelid IN (SELECT oid FROM public_rel)
    UNION ALL
    SELECT format('trg %s %s %s', tgname, tgenabled, pg_get_triggerdef(oid)) FROM pg_trigger
    WHERE NOT tgisinternal
    UNION ALL
    SELECT format('fn %s %s %s', oid::regprocedure, md5(prosrc), proacl) FROM pg_proc
    WHERE pronamespace = 'public'::regnamespace
    UNION ALL
    SELECT format('ns %s %s', nspname, nspacl) FROM pg_namespace
    UNION ALL
    SELECT format('type %s', typname) FROM pg_type WHERE typnamespace = 'public'::regnamespace
    UNION ALL
    SELECT format('rule %s %s', ev_class::regclass, rulename) FROM pg_rewrite
    WHERE ev_class IN (SELECT oid FROM public_rel)
    UNION ALL
    SELECT format('db %s %s', datacl, datallowconn) FROM pg_database
    WHERE datname = current_database()
    UNION ALL
    SELECT format('set %s %s', setrole, setconfig) FROM pg_db_role_setting
    WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
    UNION ALL SELECT format('ext %s %s', extname, extversion) FROM pg_extension
    UNION ALL SELECT format('policy %s', polname) FROM pg_policy
    UNION ALL SELECT format('pub %s', pubname) FROM pg_publication
    UNION ALL SELECT format('evt %s', evtname) FROM pg_event_trigger
    UNION ALL SELECT format('acl %s', defaclacl) FROM pg_default_acl
    UNION ALL SELECT 'lo' FROM pg_largeobject_metadata
) AS catalog(x)
"""

TABLES = """
SELECT relname AS name FROM pg_class
WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p') ORDER BY relname
"""

# The triggers that fire even with session_replication_role = replica: the guards of the log.
ALWAYS_TRIGGERS = """
SELECT tgrelid::regclass::text AS rel, quote_ident(tgname) AS name FROM pg_trigger
WHERE NOT tgisinternal AND tgenabled = 'A'
"""

COLUMNS = """
SELECT attname FROM pg_attribute
WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
ORDER BY attnum
"""

SEQUENCES = """
SELECT quote_ident(sequencename) AS name, last_value FROM pg_sequences
WHERE schemaname = 'public'
"""

OTHER_SESSIONS = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
"""


class DatabasePool:
    """One test session's databases: a clone of the template, or one a test left, reset."""

    def __init__(self, server_url: str, template: str) -> None:
        self.server_url = server_url
        self.template = template
        self._idle: list[str] = []
        self._fingerprint = ""
        self._rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
        self._sequences: list[tuple[str, int | None]] = []
        self._reusable = False

    async def learn_template(self) -> None:
        """Read what a fresh database holds: its fingerprint, rows and sequences."""
        async with connected(with_database(self.server_url, self.template)) as conn:
            self._reusable = await conn.fetchval(
                "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
            )
            self._fingerprint = await conn.fetchval(FINGERPRINT)
            for table in await conn.fetch(TABLES):
                columns = [r["attname"] for r in await conn.fetch(COLUMNS, table["name"])]
                listed = ", ".join(f'"{c}"' for c in columns)
                rows = await conn.fetch(f"SELECT {listed} FROM {table['name']}")
                self._rows[table["name"]] = (columns, [tuple(r) for r in rows])
            self._sequences = [(r["name"], r["last_value"]) for r in await conn.fetch(SEQUENCES)]

    @asynccontextmanager
    async def database(self, reuse: bool = True) -> AsyncIterator[str]:
        """Lend a fresh database for the block; keep it for the next test if it can be reset."""
        name = self._idle.pop() if self._idle else await self._clone()
        try:
            yield with_database(self.server_url, name)
        finally:
            if reuse and self._reusable and await self._reset(name):
                self._idle.append(name)
            else:
                await self._drop(name)

    async def close(self) -> None:
        """Drop every database kept for reuse."""
        while self._idle:
            await self._drop(self._idle.pop())

    async def _clone(self) -> str:
        name = f"test_{uuid.uuid4().hex[:16]}"
        async with connected(self.server_url) as conn:
            await conn.execute(f"CREATE DATABASE {name} TEMPLATE {self.template}")
        return name

    async def _drop(self, name: str) -> None:
        async with connected(self.server_url) as conn:
            await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    async def _reset(self, name: str) -> bool:
        """Set the database back to the template's rows; False if it cannot be."""
        try:
            async with connected(with_database(self.server_url, name)) as conn:
                if not await _alone(conn) or await conn.fetchval(FINGERPRINT) != self._fingerprint:
                    return False
                async with conn.transaction():
                    await self._restore(conn)
                return True
        except (OSError, asyncpg.PostgresError):
            return False

    async def _restore(self, conn: asyncpg.Connection) -> None:
        # Foreign keys' triggers are off in replica mode; the log's guards fire in every mode,
        # so they are switched off for this transaction only (the DDL is undone with it too,
        # were it to fail).
        await conn.execute("SET LOCAL session_replication_role = replica")
        guards = await conn.fetch(ALWAYS_TRIGGERS)
        for guard in guards:
            await conn.execute(f"ALTER TABLE {guard['rel']} DISABLE TRIGGER {guard['name']}")
        for table, (columns, rows) in self._rows.items():
            await conn.execute(f"DELETE FROM {table}")
            if rows:
                await conn.copy_records_to_table(table, records=rows, columns=columns)
        for guard in guards:
            await conn.execute(f"ALTER TABLE {guard['rel']} ENABLE ALWAYS TRIGGER {guard['name']}")
        for sequence, last in self._sequences:
            await conn.execute(f"SELECT setval('{sequence}', $1, $2)", last or 1, last is not None)
        # What the planner learnt from this test's rows goes too, as a clone never had it.
        await conn.execute(
            "DELETE FROM pg_statistic WHERE starelid IN "
            "(SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)"
        )


async def _alone(conn: asyncpg.Connection, within: float = 5.0) -> bool:
    """End every other session in the database; True once none is left."""
    await conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    deadline = time.monotonic() + within
    while await conn.fetchval(OTHER_SESSIONS):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    prepared = await conn.fetchval(
        "SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database()"
    )
    return not prepared
