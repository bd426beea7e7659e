"""Filling in the fact keys of events appended before keys were stored (migration 0012).

A key is computed once, when an event is appended (events/records.py); events older than the
``fact`` column get theirs here, by the same derivation, when the migrations run. The fill goes
in batches, each in a transaction of its own, through the index of the events still waiting
(``events_fact_missing``), so it can stop anywhere and start again where it stopped, and once
done it costs one index probe. It is the one UPDATE the log admits: in a session that sets
``ledger.fill_fact_keys``, a missing key of a report may be filled in, and nothing else
changed (the triggers of migration 0012 check it row by row). The hash chain does not cover
the key, so every stored hash still holds.
"""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

from events.facts import stored_fact_key
from events.streams import AMENDMENT_TYPES

FILL_BATCH = 5_000

# The one change the log's rows ever take (a key filled in once, in a session the guard lets
# through only for that: migration 0012), kept here beside the fill rather than with the
# reader in events/log.py, like the writer's statements in events/commit.py.
# The same predicate as the partial index's, so that the planner walks the index.
_WAITING = "fact IS NULL AND type NOT IN ({})".format(
    ", ".join(f"'{t}'" for t in sorted(AMENDMENT_TYPES))
)
_COUNT = f"SELECT count(*) FROM events WHERE {_WAITING}"
_NEXT = f"""SELECT position, type, data::text AS data, effective_date FROM events
            WHERE {_WAITING} ORDER BY position LIMIT $1"""
_FILL = """UPDATE events SET fact = u.fact
           FROM unnest($1::bigint[], $2::text[]) AS u(position, fact)
           WHERE events.position = u.position AND events.fact IS NULL"""


async def fill_fact_keys(
    conn: asyncpg.Connection,
    progress: Callable[[int, int], None] | None = None,
    batch: int = FILL_BATCH,
) -> int:
    """Store the derived key of every report that has none; return how many were filled.

    ``progress(done, total)`` is called after each batch.
    """
    total: int = await conn.fetchval(_COUNT)
    done = 0
    while done < total:
        async with conn.transaction():
            rows = await conn.fetch(_NEXT, batch)
            if not rows:
                break
            keys = [stored_fact_key(r["type"], r["data"], r["effective_date"]) for r in rows]
            await conn.execute("SET LOCAL ledger.fill_fact_keys = 'on'")
            await conn.execute(_FILL, [r["position"] for r in rows], keys)
        done += len(rows)
        if progress is not None:
            progress(done, total)
    return done
