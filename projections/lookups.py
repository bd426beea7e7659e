"""Reading the read models: candidates that the folds then answer for."""

from __future__ import annotations

from events.store import Connection


async def company_ids(conn: Connection, after: str | None, limit: int) -> list[str]:
    """Return company ids in order after ``after`` (keyset pagination)."""
    rows = await conn.fetch(
        "SELECT company_id FROM rm_companies WHERE company_id > $1 ORDER BY company_id LIMIT $2",
        after or "",
        limit,
    )
    return [row["company_id"] for row in rows]


async def investor_company_ids(conn: Connection, investor_id: str) -> list[str]:
    """Return the companies whose rounds (or their corrections) ever named an investor."""
    rows = await conn.fetch(
        """SELECT company_id FROM rm_investor_companies
           WHERE investor_id = $1 ORDER BY company_id""",
        investor_id,
    )
    return [row["company_id"] for row in rows]
