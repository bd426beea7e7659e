"""Webhook endpoints and their deliveries as the API shows them, and the SQL that keeps them."""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg
import msgspec

from events.chain import format_instant
from events.log import HEAD_POSITION, Connection
from service.schemas import (
    Attempt,
    CreatedWebhook,
    Delivery,
    ReplayQueued,
    RotatedSecret,
    WebhookEndpoint,
)
from service.webhooks.signing import new_secret

# Wakes dispatchers: an endpoint added or enabled, deliveries queued by hand.
WEBHOOKS_CHANNEL = "ledger_webhooks"

ENDPOINT_COLUMNS = (
    "w.endpoint_id, w.url, w.event_types, w.description, w.created_at, c.after_position,"
    " w.disabled_at, w.disabled_reason, w.last_success_at, w.failing_since,"
    " w.previous_secret_expires_at"
)
ENDPOINTS = "webhook_endpoints w JOIN webhook_cursors c USING (endpoint_id)"


def _instant(value: dt.datetime | None) -> str | None:
    return format_instant(value) if value is not None else None


def to_endpoint(row: asyncpg.Record) -> WebhookEndpoint:
    """Turn a row of ``ENDPOINT_COLUMNS`` into the endpoint as the API shows it."""
    return WebhookEndpoint(
        id=row["endpoint_id"],
        url=row["url"],
        event_types=list(row["event_types"]) if row["event_types"] is not None else None,
        description=row["description"],
        status="disabled" if row["disabled_at"] is not None else "enabled",
        disabled_at=_instant(row["disabled_at"]),
        disabled_reason=row["disabled_reason"],
        created_at=format_instant(row["created_at"]),
        queued_through_position=row["after_position"],
        last_success_at=_instant(row["last_success_at"]),
        failing_since=_instant(row["failing_since"]),
        previous_secret_expires_at=_instant(row["previous_secret_expires_at"]),
    )


async def create_endpoint(
    conn: Connection, url: str, event_types: list[str] | None, description: str
) -> CreatedWebhook:
    """Register an endpoint that receives the events appended from now on."""
    secret = new_secret()
    row = await conn.fetchrow(
        f"""WITH w AS (
                INSERT INTO webhook_endpoints (endpoint_id, url, event_types, description, secret)
                VALUES ($1, $2, $3, $4, $5)
                RETURNING *
            ), c AS (
                INSERT INTO webhook_cursors (endpoint_id, after_position)
                SELECT endpoint_id, ({HEAD_POSITION}) FROM w
                RETURNING *
            )
            SELECT {ENDPOINT_COLUMNS}, pg_notify('{WEBHOOKS_CHANNEL}', '')
            FROM w JOIN c USING (endpoint_id)""",
        f"wh_{uuid.uuid4().hex}",
        url,
        event_types,
        description,
        secret,
    )
    assert row is not None
    return CreatedWebhook(**msgspec.structs.asdict(to_endpoint(row)), secret=secret)


async def list_endpoints(conn: Connection) -> list[WebhookEndpoint]:
    """Return every endpoint, oldest first."""
    rows = await conn.fetch(
        f"SELECT {ENDPOINT_COLUMNS} FROM {ENDPOINTS} ORDER BY w.created_at, w.endpoint_id"
    )
    return [to_endpoint(row) for row in rows]


async def get_endpoint(conn: Connection, endpoint_id: str) -> WebhookEndpoint | None:
    """Return one endpoint, or None."""
    row = await conn.fetchrow(
        f"SELECT {ENDPOINT_COLUMNS} FROM {ENDPOINTS} WHERE w.endpoint_id = $1", endpoint_id
    )
    return to_endpoint(row) if row is not None else None


async def delete_endpoint(conn: Connection, endpoint_id: str) -> bool:
    """Delete an endpoint with its deliveries; return whether it existed.

    Rows are locked in the order the dispatcher locks them (cursor, deliveries, endpoint), so
    a delete and a dispatcher never wait on each other in a cycle.
    """
    async with conn.transaction():
        found = await conn.fetchval(
            "SELECT 1 FROM webhook_cursors WHERE endpoint_id = $1 FOR UPDATE", endpoint_id
        )
        if found is None:
            return False
        await conn.execute("DELETE FROM webhook_deliveries WHERE endpoint_id = $1", endpoint_id)
        await conn.execute("DELETE FROM webhook_endpoints WHERE endpoint_id = $1", endpoint_id)
    return True


async def rotate_secret(
    conn: Connection, endpoint_id: str, grace: dt.timedelta
) -> RotatedSecret | None:
    """Give an endpoint a new secret; the current one keeps signing for ``grace``."""
    secret = new_secret()
    row = await conn.fetchrow(
        """UPDATE webhook_endpoints
           SET previous_secret = CASE WHEN $3 > interval '0' THEN secret END,
               previous_secret_expires_at = CASE WHEN $3 > interval '0' THEN now() + $3 END,
               secret = $2
           WHERE endpoint_id = $1
           RETURNING previous_secret_expires_at""",
        endpoint_id,
        secret,
        grace,
    )
    if row is None:
        return None
    return RotatedSecret(
        id=endpoint_id,
        secret=secret,
        previous_secret_expires_at=_instant(row["previous_secret_expires_at"]),
    )


async def enable_endpoint(conn: Connection, endpoint_id: str) -> WebhookEndpoint | None:
    """Enable a disabled endpoint: its queued deliveries and the events since go out again.

    A 410 fails the deliveries it answered as it disables the endpoint; enabling undoes both,
    so those go out again too, as a new series of attempts.
    """
    row = await conn.fetchrow(
        f"""WITH was AS (
                SELECT disabled_at FROM webhook_endpoints WHERE endpoint_id = $1
            ), w AS (
                UPDATE webhook_endpoints
                SET failing_since = CASE WHEN disabled_at IS NULL THEN failing_since END,
                    disabled_at = NULL, disabled_reason = NULL
                WHERE endpoint_id = $1
                RETURNING *
            ), resumed AS (
                UPDATE webhook_deliveries d
                SET status = 'pending', series_start = d.attempts, next_attempt_at = now(),
                    completed_at = NULL
                WHERE d.endpoint_id = $1 AND d.status = 'failed'
                  AND (SELECT disabled_at FROM was) IS NOT NULL
                  AND (SELECT a.response_code FROM webhook_attempts a
                       WHERE a.delivery_id = d.delivery_id
                       ORDER BY a.attempt_id DESC LIMIT 1) = 410
                RETURNING 1
            )
            SELECT {ENDPOINT_COLUMNS}, pg_notify('{WEBHOOKS_CHANNEL}', ''),
                   (SELECT count(*) FROM resumed) AS resumed
            FROM w JOIN webhook_cursors c USING (endpoint_id)""",
        endpoint_id,
    )
    return to_endpoint(row) if row is not None else None


async def list_deliveries(
    conn: Connection, endpoint_id: str, status: str | None, before: int | None, limit: int
) -> list[Delivery]:
    """Return an endpoint's deliveries, newest first, each with its attempts."""
    rows = await conn.fetch(
        """SELECT delivery_id, event_id, position, replay, status, attempts, series_start,
                  next_attempt_at,
                  created_at, completed_at
           FROM webhook_deliveries
           WHERE endpoint_id = $1 AND ($2::text IS NULL OR status = $2)
             AND ($3::bigint IS NULL OR delivery_id < $3)
           ORDER BY delivery_id DESC LIMIT $4""",
        endpoint_id,
        status,
        before,
        limit,
    )
    attempts: dict[int, list[Attempt]] = {row["delivery_id"]: [] for row in rows}
    for a in await conn.fetch(
        """SELECT delivery_id, attempted_at, duration_ms, response_code, succeeded, error
           FROM webhook_attempts WHERE delivery_id = ANY($1::bigint[])
           ORDER BY delivery_id, attempt_id""",
        list(attempts),
    ):
        attempts[a["delivery_id"]].append(
            Attempt(
                attempted_at=format_instant(a["attempted_at"]),
                duration_ms=round(a["duration_ms"], 3),
                response_code=a["response_code"],
                succeeded=a["succeeded"],
                error=a["error"],
            )
        )
    return [
        Delivery(
            id=row["delivery_id"],
            event_id=row["event_id"],
            position=row["position"],
            replay=row["replay"],
            status=row["status"],
            attempts=row["attempts"] - row["series_start"],
            next_attempt_at=format_instant(row["next_attempt_at"])
            if row["status"] == "pending"
            else None,
            created_at=format_instant(row["created_at"]),
            completed_at=_instant(row["completed_at"]),
            attempt_log=attempts[row["delivery_id"]],
        )
        for row in rows
    ]


MAX_REPLAY = 100_000


async def replay(conn: Connection, endpoint_id: str, after_position: int) -> ReplayQueued | None:
    """Queue again the matching events after ``after_position`` that were already queued.

    Events past the endpoint's cursor are not queued here: they are on their way anyway.
    """
    row = await conn.fetchrow(
        f"""WITH endpoint AS (
                SELECT w.endpoint_id, w.event_types, c.after_position FROM {ENDPOINTS}
                WHERE w.endpoint_id = $1
            ), picked AS (
                SELECT w.endpoint_id, e.position, e.event_id
                FROM endpoint w JOIN events e
                  ON e.position > $2 AND e.position <= w.after_position
                LEFT JOIN events root ON root.event_id = e.root_event_id
                WHERE w.event_types IS NULL OR e.type = ANY(w.event_types)
                   OR root.type = ANY(w.event_types)  -- amendments, as the fan-out matches them
                ORDER BY e.position
                LIMIT $3
            ), queued AS (
                INSERT INTO webhook_deliveries (endpoint_id, position, event_id, replay)
                SELECT endpoint_id, position, event_id, true FROM picked
                RETURNING position
            )
            SELECT w.after_position, (SELECT count(*) FROM queued) AS queued,
                   (SELECT max(position) FROM queued) AS last,
                   pg_notify('{WEBHOOKS_CHANNEL}', '')
            FROM endpoint w""",
        endpoint_id,
        after_position,
        MAX_REPLAY,
    )
    if row is None:
        return None
    complete = row["queued"] < MAX_REPLAY
    through = row["after_position"] if complete else row["last"]
    return ReplayQueued(
        id=endpoint_id,
        after_position=after_position,
        through_position=max(after_position, through),
        queued=row["queued"],
        complete=complete,
    )


class ResendRefused(Exception):
    """A delivery that is still pending cannot be resent (it is on its way)."""


async def resend(conn: Connection, endpoint_id: str, delivery_id: int) -> bool:
    """Send a finished delivery again, as a new series of attempts; False if there is none."""
    row = await conn.fetchrow(
        f"""WITH found AS (
                SELECT delivery_id, status FROM webhook_deliveries
                WHERE endpoint_id = $1 AND delivery_id = $2
            ), restarted AS (
                UPDATE webhook_deliveries d
                SET status = 'pending', series_start = d.attempts, next_attempt_at = now(),
                    completed_at = NULL
                FROM found WHERE d.delivery_id = found.delivery_id AND d.status <> 'pending'
                RETURNING d.delivery_id, pg_notify('{WEBHOOKS_CHANNEL}', '')
            )
            SELECT found.status, (SELECT count(*) FROM restarted) AS restarted FROM found""",
        endpoint_id,
        delivery_id,
    )
    if row is None:
        return False
    if row["restarted"] == 0:
        raise ResendRefused(f"delivery {delivery_id} is still pending")
    return True
