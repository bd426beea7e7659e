"""The demo: public reports on Zhipu AI's 2023 funding, loaded into a fresh embedded database.

The dataset (``demo_data/zhipu-2023.jsonl``) holds the facts of those reports only, each with
the report it comes from: the companies, the 2023 rounds, the valuations of July and September,
the August approval, the US export rules of October 2022 and October 2023, and one correction
where the reports disagree on the dollar figure of the round. Each event is appended on its
own, so each has its own ``recorded_at`` and ``known_at`` can fall between any two of them.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg

from events.migrate import migrate
from events.transfer import ImportReport, import_lines
from events.writer import GroupCommitter
from service.database import create_pool
from service.keys import SCOPES, create_key

DATASET = Path(__file__).parent / "demo_data" / "zhipu-2023.jsonl"
# Printed in the README so that its examples can be pasted as they are; only `serve --demo`
# creates it, in a database of its own that is deleted when the demo stops.
DEMO_TOKEN = "ldg_demo00000000_local-demo-token-never-use-it-elsewhere"  # noqa: S105


async def load(url: str) -> ImportReport:
    """Migrate the database at ``url``, append the dataset and create the demo's key."""
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        if await conn.fetchval("SELECT count(*) FROM api_keys WHERE key_id = 'demo00000000'") == 0:
            await create_key(conn, "demo", list(SCOPES), token=DEMO_TOKEN)
    finally:
        await conn.close()
    pool = await create_pool(url, 3)
    committer = GroupCommitter(pool)
    committer.start()
    try:
        async with pool.acquire() as reader:
            with DATASET.open("rb") as lines:
                return await import_lines(committer, reader, lines, batch_size=1)
    finally:
        await committer.stop()
        await pool.close()
