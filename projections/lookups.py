"""Reading the read models: candidates that the folds then answer for."""

from __future__ import annotations

from events.log import Connection


async def company_ids(conn: Connection, after: str | None, limit: int) -> list[str]:
    """Return company ids in order after ``after`` (keyset pagination)."""
    rows = await conn.fetch(
        "SELECT company_id FROM rm_companies WHERE company_id > $1 ORDER BY company_id LIMIT $2",
        after or "",
        limit,
    )
    return [row["company_id"] for row in rows]


async def investor_company_ids(conn: Connection, investor_id: str) -> list[tuple[str, int]]:
    """Return the companies whose rounds (or corrections) named an investor, and from when."""
    rows = await conn.fetch(
        """SELECT company_id, first_position FROM rm_investor_companies
           WHERE investor_id = $1 ORDER BY company_id""",
        investor_id,
    )
    return [(row["company_id"], row["first_position"]) for row in rows]
