"""The demo: five public reports of Zhipu AI's 2023 raise, loaded into a fresh embedded database.

The dataset (``demo_data/zhipu-2023.jsonl``) records what each report says as that source's own
events (its outlet as ``source.name``; author, title and date precision in ``metadata``): the
companies, the 2023 rounds (the raise reported by all five, one giving US$341 million where
four give US$342 million), the valuations of July and September, the August approval, and the
US export rules of 2022 and October 2023. The reports are appended in order of publication
as far as their texts tell, each event on its own, so each has its own ``recorded_at`` and
``known_at`` can fall between any two of them.
"""

from __future__ import annotations

from pathlib import Path

from events.transfer import ImportReport, import_lines
from service.bootstrap import database, group_committer
from service.keys import SCOPES, create_key
from service.settings import Settings

DATASET = Path(__file__).parent / "demo_data" / "zhipu-2023.jsonl"
# Printed in the README so that its examples can be pasted as they are; only `serve --demo`
# creates it, in a database of its own that is deleted when the demo stops.
DEMO_TOKEN = "ldg_demo00000000_local-demo-token-never-use-it-elsewhere"  # noqa: S105


async def load(url: str) -> ImportReport:
    """Migrate the database at ``url``, append the dataset and create the demo's key."""
    settings = Settings(database_url=url)
    async with (
        database(settings, pool_size=3) as db,
        group_committer(db.pool, settings) as committer,
        db.pool.acquire() as conn,
    ):
        if await conn.fetchval("SELECT count(*) FROM api_keys WHERE key_id = 'demo00000000'") == 0:
            await create_key(conn, "demo", list(SCOPES), token=DEMO_TOKEN)
        with DATASET.open("rb") as lines:
            return await import_lines(committer, conn, lines, batch_size=1)
