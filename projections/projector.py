"""The projector: tails the log by position and keeps the read models, rebuildable at will.

The checkpoint commits in the same transaction as the read-model rows: committed apart, a crash
between the two would skip events or apply them twice. Several projectors take turns on the
checkpoint row's lock; one that cannot apply an event stops there (shown by /health).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from events.log import Connection, head_position, read_projected
from events.wakes import woken
from projections.read_models import Changes, changes

log = logging.getLogger(__name__)

NAME = "read_models"
TABLES = ("rm_companies", "rm_investor_companies")
REBUILD_LOCK_KEY = 0x1ED6E6


@dataclass(frozen=True, slots=True)
class Status:
    """Where the projector stands."""

    position: int
    error: str | None


class ProjectionError(RuntimeError):
    """An event could not be applied; the projector stops there."""


async def status(conn: Connection) -> Status:
    """Return the checkpoint and the error that stopped the projector, if any."""
    row = await conn.fetchrow(
        "SELECT position, error FROM projection_checkpoints WHERE name = $1", NAME
    )
    assert row is not None, "projection_checkpoints is missing its row: run `ledger migrate`"
    return Status(row["position"], row["error"])


async def step(conn: Connection, batch: int = 1000) -> int:
    """Apply the next events after the checkpoint; return how many were applied."""
    async with conn.transaction():
        checkpoint = await conn.fetchrow(
            "SELECT position, error FROM projection_checkpoints WHERE name = $1 FOR UPDATE", NAME
        )
        assert checkpoint is not None
        if checkpoint["error"] is not None:
            raise ProjectionError(checkpoint["error"])
        rows = await read_projected(conn, checkpoint["position"], 2**63 - 1, batch)
        if not rows:
            return 0
        await _apply(conn, rows, TABLES)
        await conn.execute(
            "UPDATE projection_checkpoints SET position = $2 WHERE name = $1",
            NAME,
            rows[-1]["position"],
        )
    return len(rows)


async def _apply(conn: Connection, rows: list[asyncpg.Record], tables: tuple[str, str]) -> None:
    try:
        found = changes(rows)
    except Exception as exc:
        raise ProjectionError(f"cannot apply events {rows[0]['position']}..: {exc}") from exc
    await _write(conn, found, tables)


async def _write(conn: Connection, found: Changes, tables: tuple[str, str]) -> None:
    companies, links = tables
    if found.companies:
        await conn.execute(
            f"""INSERT INTO {companies} (company_id, first_position)
                SELECT * FROM unnest($1::text[], $2::bigint[]) ON CONFLICT DO NOTHING""",
            list(found.companies),
            list(found.companies.values()),
        )
    if found.links:
        await conn.execute(
            f"""INSERT INTO {links} (investor_id, company_id, first_position)
                SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
                ON CONFLICT DO NOTHING""",
            [investor for investor, _ in found.links],
            [company for _, company in found.links],
            list(found.links.values()),
        )


async def run(
    pool: asyncpg.Pool, wake: asyncio.Event, poll_seconds: float = 1.0, batch: int = 1000
) -> None:
    """Keep the read models up to date until cancelled: wake on NOTIFY, poll as a fallback.

    Stopped by an event it cannot apply, it stays stopped (and says so) until the error is
    cleared, as ``rebuild`` does once the read models are whole again; then it goes on.
    """
    stopped_by: str | None = None
    while True:
        wake.clear()  # before looking: a NOTIFY arriving during the step wakes the next wait
        try:
            async with pool.acquire() as conn:
                applied = await step(conn, batch)
            stopped_by = None
        except ProjectionError as exc:
            if str(exc) != stopped_by:
                stopped_by = str(exc)
                await _record_error(pool, stopped_by)
                log.error("the projector stopped: %s", exc)
            applied = 0
        except Exception as exc:  # the database went away; the checkpoint says where to resume
            log.warning("the projector could not reach the database: %s", exc)
            applied = 0
        if applied:
            continue
        await woken(wake, poll_seconds)


async def _record_error(pool: asyncpg.Pool, error: str) -> None:
    with contextlib.suppress(Exception):
        await pool.execute(
            "UPDATE projection_checkpoints SET error = $2 WHERE name = $1", NAME, error[:2000]
        )


async def rebuild(
    conn: Connection, progress: Callable[[int, int], None] | None = None, chunk: int = 20_000
) -> int:
    """Replay the whole log into new tables, then swap them in; return the events replayed.

    Queries keep reading the old tables while the new ones fill; the swap happens in one
    transaction holding the checkpoint's lock, after catching up with what was appended
    meanwhile, so the new tables equal what the incremental projector would have built.
    """
    shadow = tuple(f"{table}_next" for table in TABLES)
    # One rebuild at a time: a second would drop the first one's tables. Session-level, so it
    # is released if this connection goes away.
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", REBUILD_LOCK_KEY):
        raise ProjectionError("another rebuild is running")
    try:
        return await _rebuild(conn, shadow, progress, chunk)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", REBUILD_LOCK_KEY)


async def _rebuild(
    conn: Connection,
    shadow: tuple[str, ...],
    progress: Callable[[int, int], None] | None,
    chunk: int,
) -> int:
    for table, next_table in zip(TABLES, shadow, strict=True):
        await conn.execute(f"DROP TABLE IF EXISTS {next_table}")
        await conn.execute(f"CREATE TABLE {next_table} (LIKE {table} INCLUDING ALL)")
        await _copy_grants(conn, table, next_table)
    head = await head_position(conn)
    done = await _replay(conn, 0, head, shadow, progress, chunk)  # type: ignore[arg-type]
    async with conn.transaction():
        await conn.fetchrow(
            "SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE", NAME
        )
        final = await head_position(conn)
        done += await _replay(conn, head, final, shadow, None, chunk)  # type: ignore[arg-type]
        for table, next_table in zip(TABLES, shadow, strict=True):
            await conn.execute(f"ALTER TABLE {table} RENAME TO {table}_old")
            await conn.execute(f"ALTER TABLE {next_table} RENAME TO {table}")
            await conn.execute(f"DROP TABLE {table}_old")
        await conn.execute(
            "UPDATE projection_checkpoints SET position = $2, error = NULL WHERE name = $1",
            NAME,
            final,
        )
    return done


async def _copy_grants(conn: Connection, table: str, next_table: str) -> None:
    """Give the new table the privileges the old one had (a service role's, say)."""
    rows = await conn.fetch(
        """SELECT grantee, privilege_type FROM information_schema.role_table_grants
           WHERE table_schema = current_schema() AND table_name = $1
             AND grantee <> current_user""",
        table,
    )
    for row in rows:
        grantee = row["grantee"]
        who = "PUBLIC" if grantee == "PUBLIC" else '"' + grantee.replace('"', '""') + '"'
        await conn.execute(f"GRANT {row['privilege_type']} ON {next_table} TO {who}")


async def _replay(
    conn: Connection,
    after: int,
    until: int,
    tables: tuple[str, str],
    progress: Callable[[int, int], None] | None,
    chunk: int,
) -> int:
    done = 0
    while after < until:
        rows = await read_projected(conn, after, until, chunk)
        if not rows:
            break
        await _apply(conn, rows, tables)
        after = rows[-1]["position"]
        done += len(rows)
        if progress is not None:
            progress(done, until)
    return done
