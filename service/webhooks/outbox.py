"""The delivery outbox's SQL: fan-out of events into deliveries, their leases, their outcomes."""

from __future__ import annotations

import datetime as dt

import asyncpg
import msgspec

from events.log import EVENT_COLUMNS, HEAD_POSITION, Connection, to_recorded
from service.schemas import WebhookMessage
from service.webhooks.owner import OWNER_LOCK_CLASS
from service.webhooks.signing import secret_key

FAN_OUT_ENDPOINTS = 50  # cursors moved per statement
FAN_OUT_SPAN = 2000  # positions an endpoint's cursor moves per statement

_EVENT_COLUMNS = ", ".join(f"e.{c.strip()}" for c in EVENT_COLUMNS.split(","))

# One statement, reading the log where it writes deliveries, so that the cursor moves in the same
# transaction and snapshot as the deliveries it implies (never skipped, never twice): it cannot
# become a call into events/log.py. The head it stops at is the log's own expression. An
# amendment goes wherever the fact at the bottom of its chain went (its root_event_id), so a
# subscriber to a type hears of every correction and retraction of what it was sent.
FAN_OUT = f"""
WITH head AS ({HEAD_POSITION}),
due AS (
    SELECT c.endpoint_id, c.after_position, w.event_types,
           LEAST((SELECT position FROM head), c.after_position + $2) AS through
    FROM webhook_cursors c JOIN webhook_endpoints w USING (endpoint_id)
    WHERE w.disabled_at IS NULL AND c.after_position < (SELECT position FROM head)
    ORDER BY c.after_position
    LIMIT $1
    FOR UPDATE OF c SKIP LOCKED
), moved AS (
    UPDATE webhook_cursors c SET after_position = due.through
    FROM due WHERE c.endpoint_id = due.endpoint_id
    RETURNING c.endpoint_id
), queued AS (
    INSERT INTO webhook_deliveries (endpoint_id, position, event_id)
    SELECT due.endpoint_id, e.position, e.event_id
    FROM due JOIN events e
      ON e.position > due.after_position AND e.position <= due.through
    LEFT JOIN events root ON root.event_id = e.root_event_id
    WHERE due.event_types IS NULL OR e.type = ANY(due.event_types)
       OR root.type = ANY(due.event_types)
    ORDER BY e.position
    ON CONFLICT (endpoint_id, position) WHERE NOT replay DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM moved) AS endpoints, (SELECT count(*) FROM queued) AS deliveries,
       (SELECT count(*) FROM due WHERE through < (SELECT position FROM head)) AS behind,
       EXISTS (SELECT FROM webhook_endpoints WHERE disabled_at IS NULL) AS enabled
"""

# The leased deliveries come back with their events, joined in the statement that leases them.
# Each endpoint gives at most its share of the sends in flight: $4/$5 are the endpoints with
# sends of this dispatcher under way and how many, $6 the share. So an endpoint that never
# answers holds its share of the slots, and the others' deliveries keep going.
CLAIM = f"""
WITH busy AS (
    SELECT * FROM unnest($4::text[], $5::int[]) AS b(endpoint_id, in_flight)
), due AS (
    SELECT d.delivery_id
    FROM webhook_endpoints w
    LEFT JOIN busy b USING (endpoint_id)
    CROSS JOIN LATERAL (
        SELECT d.delivery_id, d.next_attempt_at
        FROM webhook_deliveries d
        WHERE d.endpoint_id = w.endpoint_id AND d.status = 'pending'
          AND d.next_attempt_at <= now()
        ORDER BY d.next_attempt_at
        LIMIT $6 - COALESCE(b.in_flight, 0)
        FOR NO KEY UPDATE OF d SKIP LOCKED
    ) d
    WHERE w.disabled_at IS NULL AND COALESCE(b.in_flight, 0) < $6
    ORDER BY d.next_attempt_at
    LIMIT $1
), claimed AS (
    UPDATE webhook_deliveries d
    SET attempts = d.attempts + 1, next_attempt_at = now() + $2::interval, leased_by = $3
    FROM due WHERE d.delivery_id = due.delivery_id
    RETURNING d.delivery_id, d.endpoint_id, d.position, d.attempts, d.series_start
)
SELECT c.delivery_id, c.endpoint_id, c.attempts, c.series_start, w.url, w.secret,
       CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret END
           AS previous_secret,
       {_EVENT_COLUMNS}
FROM claimed c
JOIN webhook_endpoints w USING (endpoint_id)
JOIN events e ON e.position = c.position
"""

# Leases whose owner's lock is free (its session ended: the process died) fall due now.
RECLAIM = """
UPDATE webhook_deliveries d SET next_attempt_at = now(), leased_by = NULL
WHERE d.status = 'pending' AND d.leased_by IS NOT NULL
  AND d.leased_by::bigint NOT IN (
      SELECT l.objid::bigint FROM pg_locks l
      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND l.classid = $1
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
"""

RECORD = """
WITH r AS (
    SELECT u.*, now() + u.retry_in * interval '1 second' AS next_at
    FROM unnest($1::bigint[], $2::int[], $3::bool[], $4::int[], $5::text[],
                $6::timestamptz[], $7::float8[], $8::float8[])
        AS u(delivery_id, attempt, succeeded, response_code, error, attempted_at, duration_ms,
             retry_in)
), logged AS (
    INSERT INTO webhook_attempts
        (delivery_id, attempted_at, duration_ms, response_code, succeeded, error)
    SELECT r.delivery_id, r.attempted_at, r.duration_ms, r.response_code, r.succeeded, r.error
    FROM r JOIN webhook_deliveries d USING (delivery_id)
), settled AS (
    UPDATE webhook_deliveries d SET
        status = CASE WHEN r.succeeded THEN 'succeeded'
                      WHEN r.next_at IS NULL THEN 'failed'
                      ELSE 'pending' END,
        next_attempt_at = COALESCE(r.next_at, d.next_attempt_at),
        leased_by = NULL,
        completed_at = CASE WHEN r.succeeded OR r.next_at IS NULL THEN now() END
    FROM r
    WHERE d.delivery_id = r.delivery_id AND d.attempts = r.attempt AND d.status = 'pending'
    RETURNING d.endpoint_id, r.succeeded, r.response_code
), per_endpoint AS (
    SELECT endpoint_id, bool_or(succeeded) AS any_ok,
           bool_or(response_code IS NOT DISTINCT FROM 410) AS gone
    FROM settled GROUP BY endpoint_id
)
UPDATE webhook_endpoints w SET
    last_success_at = CASE WHEN p.any_ok THEN now() ELSE w.last_success_at END,
    failing_since = CASE WHEN p.any_ok THEN NULL ELSE COALESCE(w.failing_since, now()) END,
    disabled_at = CASE
        WHEN w.disabled_at IS NOT NULL THEN w.disabled_at
        WHEN p.gone THEN now()
        WHEN NOT p.any_ok AND w.failing_since < now() - $9::interval THEN now()
    END,
    disabled_reason = CASE
        WHEN w.disabled_at IS NOT NULL THEN w.disabled_reason
        WHEN p.gone THEN 'the endpoint answered 410 Gone'
        WHEN NOT p.any_ok AND w.failing_since < now() - $9::interval
            THEN 'no successful delivery since ' || w.failing_since::text
    END
FROM per_endpoint p
WHERE w.endpoint_id = p.endpoint_id
  -- only when something changes (last_success_at is kept to the second), so that a busy
  -- endpoint's row is not rewritten by every batch
  AND ((p.any_ok AND (w.failing_since IS NOT NULL OR w.last_success_at IS NULL
                      OR w.last_success_at < now() - interval '1 second'))
       OR (NOT p.any_ok AND w.failing_since IS NULL)
       OR (w.disabled_at IS NULL
           AND (p.gone OR (NOT p.any_ok AND w.failing_since < now() - $9::interval))))
"""


class Claimed(msgspec.Struct, frozen=True):
    """A leased delivery, ready to send.

    ``attempt`` counts every attempt ever started (it identifies this one when its outcome is
    recorded); ``in_series`` counts those since the delivery was last (re)sent, for the
    retry schedule.
    """

    delivery_id: int
    endpoint_id: str
    attempt: int
    in_series: int
    url: str
    keys: list[bytes]
    message_id: str
    body: bytes


class DeliveryOutcome(msgspec.Struct, frozen=True):
    """What one attempt came to."""

    delivery_id: int
    attempt: int
    succeeded: bool
    response_code: int | None
    error: str | None
    attempted_at: dt.datetime
    duration_ms: float
    retry_in: float | None  # seconds until the next attempt, by the database's clock


_encoder = msgspec.json.Encoder()


def claimed_from(row: asyncpg.Record) -> Claimed:
    """Build the message of a claimed row; its bytes are the same on every attempt."""
    event = to_recorded(row)
    keys = [secret_key(row["secret"])]
    if row["previous_secret"] is not None:
        keys.append(secret_key(row["previous_secret"]))
    body = _encoder.encode(WebhookMessage(event.type, event.recorded_at, event))
    return Claimed(
        row["delivery_id"],
        row["endpoint_id"],
        row["attempts"],
        row["attempts"] - row["series_start"],
        row["url"],
        keys,
        str(event.event_id),
        body,
    )


async def fan_out(conn: Connection) -> asyncpg.Record:
    """Queue the deliveries of the events after some endpoints' cursors, and move the cursors."""
    fanned = await conn.fetchrow(FAN_OUT, FAN_OUT_ENDPOINTS, FAN_OUT_SPAN)
    assert fanned is not None
    return fanned


async def claim(
    conn: Connection,
    limit: int,
    lease: dt.timedelta,
    owner: int,
    in_flight: dict[str, int],
    share: int,
) -> list[asyncpg.Record]:
    """Lease up to ``limit`` due deliveries to ``owner`` until ``lease`` from now.

    No endpoint gets more than ``share`` sends in flight, counting ``in_flight`` (its sends
    already under way); each row carries what to send.
    """
    return await conn.fetch(
        CLAIM, limit, lease, owner, list(in_flight), list(in_flight.values()), share
    )


async def reclaim(conn: Connection) -> int:
    """Make the leases of dispatchers that are gone due now; return how many."""
    status = await conn.execute(RECLAIM, OWNER_LOCK_CLASS)
    return int(status.rsplit(" ", 1)[1])


async def record_outcomes(
    conn: Connection, batch: list[DeliveryOutcome], disable_after: dt.timedelta
) -> None:
    """Write outcomes: the attempts, the deliveries' next steps, the endpoints' health."""
    await conn.execute(
        RECORD,
        [o.delivery_id for o in batch],
        [o.attempt for o in batch],
        [o.succeeded for o in batch],
        [o.response_code for o in batch],
        [o.error for o in batch],
        [o.attempted_at for o in batch],
        [o.duration_ms for o in batch],
        [o.retry_in for o in batch],
        disable_after,
    )


async def delivery_status(conn: Connection) -> tuple[int | None, int, int, int]:
    """Return the slowest enabled cursor, pending deliveries, failing and disabled endpoints."""
    row = await conn.fetchrow(
        """SELECT
             (SELECT min(c.after_position) FROM webhook_cursors c
                JOIN webhook_endpoints w USING (endpoint_id) WHERE w.disabled_at IS NULL)
                AS cursor,
             (SELECT count(*) FROM webhook_deliveries WHERE status = 'pending') AS pending,
             (SELECT count(*) FROM webhook_endpoints
                WHERE disabled_at IS NULL AND failing_since IS NOT NULL) AS failing,
             (SELECT count(*) FROM webhook_endpoints WHERE disabled_at IS NOT NULL) AS disabled"""
    )
    assert row is not None
    return row["cursor"], row["pending"], row["failing"], row["disabled"]
