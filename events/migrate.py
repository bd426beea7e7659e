"""Versioned SQL migrations, applied in order under an advisory lock."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import asyncpg

from events.fact_fill import fill_fact_keys

# Any constant works as long as every process uses the same one: two processes starting at
# once queue on this lock, and the second finds the work done.
MIGRATION_LOCK_KEY = 0x1ED6E5


@dataclass(frozen=True)
class Migration:
    """One SQL file: its version (the numeric prefix), name and text."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """Return a SHA-256 of the file, so an edited applied migration is noticed."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available_migrations() -> list[Migration]:
    """Return the migrations shipped with the package, in version order."""
    found = []
    for entry in resources.files("events.migrations").iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append(Migration(version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


class MigrationError(RuntimeError):
    """An applied migration differs from the file shipped under the same version."""


async def migrate(
    connection: asyncpg.Connection, progress: Callable[[int, int], None] | None = None
) -> list[str]:
    """Apply every pending migration, then fill in missing fact keys (events/fact_fill.py).

    Return the names of the migrations applied now; ``progress(done, total)`` follows the fill.
    """
    applied_now: list[str] = []
    await connection.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        # Looked up first: a service role that may not create tables can still check that
        # the schema is up to date (CREATE ... IF NOT EXISTS needs the privilege regardless).
        if await connection.fetchval("SELECT to_regclass('schema_migrations')") is None:
            await connection.execute(
                """CREATE TABLE schema_migrations (
                       version integer PRIMARY KEY,
                       name text NOT NULL,
                       checksum text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
        rows = await connection.fetch("SELECT version, name, checksum FROM schema_migrations")
        applied = {row["version"]: row for row in rows}
        for migration in available_migrations():
            row = applied.get(migration.version)
            if row is not None:
                if row["checksum"] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.name} was changed after it was applied"
                    )
                continue
            async with connection.transaction():
                await connection.execute(migration.sql)
                await connection.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            applied_now.append(migration.name)
        await fill_fact_keys(connection, progress)
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    return applied_now
