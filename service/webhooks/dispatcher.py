"""The dispatcher: turns new events into deliveries and sends them, at least once.

Each pass of its loop does two things in the database, each a single statement:

1. **Fan-out.** For enabled endpoints whose cursor is behind the head of the log (cursor rows
   taken ``FOR UPDATE SKIP LOCKED``, so several dispatchers share them), the matching events
   after the cursor become delivery rows and the cursor moves, in one transaction: an event is
   never skipped and never becomes two deliveries (a unique index says so too).
2. **Claim.** Due deliveries (``FOR UPDATE SKIP LOCKED`` again) are leased: their attempt count
   goes up and their next attempt moves to the end of the lease, which is committed before
   anything is sent. Another dispatcher sees them as not due until the lease ends, so in normal
   operation an attempt is sent once; a dispatcher that dies mid-send leaves a lease that ends,
   and the delivery is sent again (at least once, never lost).

Sends run concurrently up to a bound, each through httpx with a timeout, to an address checked
at connection time. Outcomes are written back in batches by one recorder: the attempt's row,
the delivery's next step (done, retry at a time on the schedule, or failed) and the endpoint's
health (a 410 disables it, as do days of failures with no success).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import logging
import random
import ssl
import time
from collections.abc import Iterable
from typing import Any

import asyncpg
import httpcore
import httpx
import msgspec

from events.log import EVENT_COLUMNS, HEAD_POSITION, Connection, to_recorded
from events.records import RecordedEvent
from service import metrics
from service.settings import Settings
from service.webhooks.signing import secret_key, signature_header
from service.webhooks.targets import Resolver, TargetError, addresses_of, check_addresses

log = logging.getLogger(__name__)

FAN_OUT_ENDPOINTS = 50  # cursors moved per statement
FAN_OUT_SPAN = 2000  # positions an endpoint's cursor moves per statement
MAX_RESPONSE_BYTES = 4096  # of a receiver's answer, read and dropped
MAX_RETRY_AFTER = 86400.0  # a receiver asking for more waits a day at most
POLL_SECONDS = 1.0  # retries fall due, and NOTIFY can be lost: look at least this often
USER_AGENT = "investment-ledger-webhooks/1"
MAX_ORIGINS = 1000  # clients kept at once; beyond, idle ones are closed
IDLE_CLIENT_SECONDS = 300.0
MAX_RECORD_TRIES = 5  # a batch of outcomes the database keeps refusing is then logged and dropped
DATABASE_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)

_EVENT_COLUMNS = ", ".join(f"e.{c.strip()}" for c in EVENT_COLUMNS.split(","))

# One statement, reading the log where it writes deliveries, so that the cursor moves in the same
# transaction and snapshot as the deliveries it implies (never skipped, never twice): it cannot
# become a call into events/log.py. The head it stops at is the log's own expression.
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
     AND (due.event_types IS NULL OR e.type = ANY(due.event_types))
    ORDER BY e.position
    ON CONFLICT (endpoint_id, position) WHERE NOT replay DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM moved) AS endpoints, (SELECT count(*) FROM queued) AS deliveries,
       (SELECT count(*) FROM due WHERE through < (SELECT position FROM head)) AS behind
"""

# The leased deliveries come back with their events, joined in the statement that leases them.
CLAIM = f"""
WITH due AS (
    SELECT d.delivery_id
    FROM webhook_deliveries d JOIN webhook_endpoints w USING (endpoint_id)
    WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND w.disabled_at IS NULL
    ORDER BY d.next_attempt_at
    LIMIT $1
    FOR NO KEY UPDATE OF d SKIP LOCKED
), claimed AS (
    UPDATE webhook_deliveries d
    SET attempts = d.attempts + 1, next_attempt_at = now() + $2::interval
    FROM due WHERE d.delivery_id = due.delivery_id
    RETURNING d.delivery_id, d.endpoint_id, d.position, d.attempts, d.series_start
)
SELECT c.delivery_id, c.attempts, c.series_start, w.url, w.secret,
       CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret END
           AS previous_secret,
       {_EVENT_COLUMNS}
FROM claimed c
JOIN webhook_endpoints w USING (endpoint_id)
JOIN events e ON e.position = c.position
"""

RECORD = """
WITH r AS (
    SELECT * FROM unnest($1::bigint[], $2::int[], $3::bool[], $4::int[], $5::text[],
                         $6::timestamptz[], $7::float8[], $8::timestamptz[])
        AS r(delivery_id, attempt, succeeded, response_code, error, attempted_at, duration_ms,
             next_at)
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


class WebhookMessage(msgspec.Struct, frozen=True):
    """The body POSTed to an endpoint: the event as ``GET /events`` shows it."""

    type: str
    timestamp: str
    data: RecordedEvent


class Claimed(msgspec.Struct, frozen=True):
    """A leased delivery, ready to send.

    ``attempt`` counts every attempt ever started (it identifies this one when its outcome is
    recorded); ``in_series`` counts those since the delivery was last (re)sent, for the
    retry schedule.
    """

    delivery_id: int
    attempt: int
    in_series: int
    url: str
    keys: list[bytes]
    message_id: str
    body: bytes


class Outcome(msgspec.Struct, frozen=True):
    """What one attempt came to."""

    delivery_id: int
    attempt: int
    succeeded: bool
    response_code: int | None
    error: str | None
    attempted_at: dt.datetime
    duration_ms: float
    next_at: dt.datetime | None


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
        row["attempts"],
        row["attempts"] - row["series_start"],
        row["url"],
        keys,
        str(event.event_id),
        body,
    )


def retry_after_seconds(value: str | None, now: dt.datetime) -> float | None:
    """Parse a Retry-After header (seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER)


def next_attempt_at(
    attempt: int,
    schedule: tuple[float, ...],
    now: dt.datetime,
    retry_after: float | None = None,
    jitter: float = 0.2,
) -> dt.datetime | None:
    """When to try again after attempt number ``attempt`` failed; None when it is the last."""
    if attempt > len(schedule):
        return None
    delay = schedule[attempt - 1] * random.uniform(1 - jitter, 1 + jitter)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return now + dt.timedelta(seconds=delay)


class Stream(httpcore.AsyncNetworkStream):
    """A connection whose socket is looked up once, not on every pass over the pool.

    httpcore asks each idle connection for its socket whenever it places a request, and anyio
    rebuilds a table of attributes to answer; at hundreds of requests a second that adds up.
    """

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        """Read from the connection."""
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Write to the connection."""
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        """Close the connection."""
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> httpcore.AsyncNetworkStream:
        """Wrap the connection in TLS."""
        return Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        """Answer ``socket`` from memory, anything else from the connection."""
        return self._socket if info == "socket" else self._inner.get_extra_info(info)


class Backend(httpcore.AsyncNetworkBackend):
    """Opens connections, only to public addresses unless ``guard`` is off.

    With the guard on, the host is resolved here, every address is checked, and the connection
    goes to a checked address: a name cannot resolve to one address for the check and another
    for the connect. TLS still verifies the certificate against the host name.
    """

    def __init__(self, resolver: Resolver, guard: bool) -> None:
        self._resolver = resolver
        self._guard = guard
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve, check, then connect to the first checked address that answers."""
        if not self._guard:
            return Stream(
                await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
            )
        addresses = check_addresses(host, await addresses_of(self._resolver, host, port))
        last: Exception | None = None
        for address in addresses:
            try:
                return Stream(
                    await self._inner.connect_tcp(
                        address, port, timeout, local_address, socket_options
                    )
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Unix sockets are never a webhook target."""
        raise TargetError("unix sockets are not webhook targets")

    async def sleep(self, seconds: float) -> None:
        """Sleep, as the connection pool asks."""
        await self._inner.sleep(seconds)


class Clients:
    """One httpx client per origin (scheme, host, port), sharing one TLS context.

    httpcore's pool looks at each of its connections for every request it places, so one pool
    for every endpoint would cost more per request the more endpoints there are; a pool per
    origin stays small. Clients send no cookies, follow no redirects and take no proxy from the
    environment. The dispatcher's own bound limits the sends in flight across all of them.
    """

    def __init__(self, settings: Settings, resolver: Resolver) -> None:
        self._settings = settings
        self._backend = Backend(resolver, guard=not settings.webhook_allow_private)
        self._ssl = httpx.create_ssl_context()
        self._clients: dict[tuple[str, str, int | None], httpx.AsyncClient] = {}
        self._used: dict[tuple[str, str, int | None], float] = {}
        self._closing: set[asyncio.Task[None]] = set()
        # Each request would be logged at INFO with its URL; outcomes are recorded instead.
        logging.getLogger("httpx").setLevel(logging.WARNING)

    def for_url(self, url: httpx.URL) -> httpx.AsyncClient:
        """Return the client for ``url``'s origin, made on first use."""
        origin = (url.scheme, url.host, url.port)
        now = time.monotonic()
        client = self._clients.get(origin)
        if client is None:
            if len(self._clients) >= MAX_ORIGINS:  # endpoints come and go
                self._close_idle(now)
            client = self._clients[origin] = self._make()
        self._used[origin] = now
        return client

    def _close_idle(self, now: float) -> None:
        """Close the clients of origins unused for a while (no send can still be on them)."""
        for origin, used in list(self._used.items()):
            if now - used > IDLE_CLIENT_SECONDS:
                del self._used[origin]
                task = asyncio.create_task(self._clients.pop(origin).aclose())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

    def _make(self) -> httpx.AsyncClient:
        # As many connections as sends in flight: a send never waits for a connection, so its
        # time limit is spent on the receiver alone.
        limits = httpx.Limits(
            max_connections=self._settings.webhook_concurrency,
            max_keepalive_connections=self._settings.webhook_concurrency,
        )
        transport = httpx.AsyncHTTPTransport(verify=self._ssl, limits=limits, trust_env=False)
        # The same pool, with connections opened through the backend above.
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=self._ssl,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=self._backend,
        )
        return httpx.AsyncClient(
            transport=transport,
            timeout=self._settings.webhook_timeout_seconds,
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": USER_AGENT},
        )

    async def aclose(self) -> None:
        """Close every client."""
        clients = list(self._clients.values())
        self._clients.clear()
        for client in clients:
            await client.aclose()
        await asyncio.gather(*self._closing, return_exceptions=True)


class Dispatcher:
    """One process's dispatcher; any number may run against one database."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings, resolver: Resolver) -> None:
        self._pool = pool
        self._settings = settings
        self._resolver = resolver
        self._slots = settings.webhook_concurrency
        self._lease = dt.timedelta(seconds=2 * settings.webhook_timeout_seconds + 5)
        self._disable_after = dt.timedelta(seconds=settings.webhook_disable_after_seconds)
        self._wake = asyncio.Event()
        self._outcomes: list[Outcome] = []
        self._outcomes_ready = asyncio.Event()
        self._sending: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        """Look for work now (an append, a replay, a reconnect)."""
        self._wake.set()

    async def run(self) -> None:
        """Dispatch until cancelled; outcomes of sends already made are recorded on the way out."""
        clients = Clients(self._settings, self._resolver)
        recorder = asyncio.create_task(self._record_forever(), name="webhook-recorder")
        try:
            await self._loop(clients)
        finally:
            if self._sending:  # let sends under way finish, briefly, so they are recorded
                await asyncio.wait(self._sending, timeout=2)
            for task in list(self._sending):
                task.cancel()
            await asyncio.gather(*self._sending, return_exceptions=True)
            recorder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recorder
            with contextlib.suppress(*DATABASE_ERRORS):
                await self._flush()  # a lease ends for whatever is left unrecorded
            await clients.aclose()

    async def _loop(self, clients: Clients) -> None:
        while True:
            self._wake.clear()
            try:
                more = await self._pass(clients)
            except DATABASE_ERRORS as exc:
                log.warning("webhook dispatch paused: %s", exc)
                more = False
            except Exception:  # a fault of ours: log it and keep dispatching
                log.exception("a webhook dispatch pass failed")
                await asyncio.sleep(POLL_SECONDS)
                more = False
            if not more:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL_SECONDS):
                        await self._wake.wait()

    async def _pass(self, clients: Clients) -> bool:
        """Fan out and claim once; return whether there is more to do at once."""
        free = self._slots - len(self._sending)
        async with self._pool.acquire() as conn:
            fanned = await conn.fetchrow(FAN_OUT, FAN_OUT_ENDPOINTS, FAN_OUT_SPAN)
            rows = await conn.fetch(CLAIM, free, self._lease) if free > 0 else []
        assert fanned is not None
        for row in rows:
            task = asyncio.create_task(self._send(clients, claimed_from(row)))
            self._sending.add(task)
            task.add_done_callback(self._sent)
        behind = fanned["endpoints"] == FAN_OUT_ENDPOINTS or fanned["behind"] > 0
        return behind or (free > 0 and len(rows) == free)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        self._wake.set()  # a slot is free

    async def _send(self, clients: Clients, claimed: Claimed) -> None:
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": claimed.message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(
                claimed.keys, claimed.message_id, timestamp, claimed.body
            ),
        }
        attempted_at = dt.datetime.now(dt.UTC)
        started = time.perf_counter()
        code: int | None = None
        error: str | None = None
        retry_after: float | None = None
        limit = self._settings.webhook_timeout_seconds
        try:
            # httpx's timeout bounds each phase (connect, each read…); this bounds the whole
            # attempt, so a receiver that trickles its answer cannot outlast the lease.
            async with asyncio.timeout(limit):
                url = httpx.URL(claimed.url)
                async with clients.for_url(url).stream(
                    "POST", url, content=claimed.body, headers=headers
                ) as response:
                    code = response.status_code
                    read = 0
                    async for chunk in response.aiter_raw(chunk_size=1024):
                        read += len(chunk)
                        if read >= MAX_RESPONSE_BYTES:
                            break
                    if not 200 <= code < 300:
                        error = f"the endpoint answered {code}"
                        retry_after = retry_after_seconds(
                            response.headers.get("retry-after"), now()
                        )
        except TargetError as exc:
            error = f"refused: {exc}"
        except (TimeoutError, httpx.TimeoutException):
            error = f"no complete answer within {limit:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        except Exception as exc:  # whatever else went wrong, the attempt failed and is recorded
            log.warning("webhook send failed unexpectedly: %r", exc)
            error = f"the message could not be sent ({type(exc).__name__})"
        duration_ms = (time.perf_counter() - started) * 1000
        succeeded = error is None
        metrics.DELIVERY_SECONDS.observe(duration_ms / 1000)
        finished = now()
        next_at = None
        if not succeeded and code != 410:
            next_at = next_attempt_at(
                claimed.in_series, self._settings.webhook_retry_schedule, finished, retry_after
            )
        metrics.DELIVERIES.labels(
            "succeeded" if succeeded else "retrying" if next_at is not None else "failed"
        ).inc()
        self._outcomes.append(
            Outcome(
                claimed.delivery_id,
                claimed.attempt,
                succeeded,
                code,
                error,
                attempted_at,
                duration_ms,
                next_at,
            )
        )
        self._outcomes_ready.set()

    async def _record_forever(self) -> None:
        refused = 0
        while True:
            await self._outcomes_ready.wait()
            self._outcomes_ready.clear()
            try:
                await self._flush()
                refused = 0
            except (OSError, TimeoutError, asyncpg.InterfaceError) as exc:
                # Kept for the next try; meanwhile the leases keep others from resending.
                log.warning("cannot record webhook outcomes yet: %s", exc)
                await asyncio.sleep(0.5)
                self._outcomes_ready.set()
            except asyncpg.PostgresError as exc:
                refused += 1
                if refused < MAX_RECORD_TRIES:
                    log.warning("cannot record webhook outcomes yet: %s", exc)
                    await asyncio.sleep(0.5)
                    self._outcomes_ready.set()
                    continue
                # The database keeps refusing these outcomes: give them up (their deliveries
                # go again when their leases end) so that later outcomes get through.
                dropped, self._outcomes = self._outcomes, []
                log.error("dropped %d webhook outcomes the database refused: %s", len(dropped), exc)
                refused = 0

    async def _flush(self) -> None:
        batch, self._outcomes = self._outcomes, []
        if not batch:
            return
        try:
            async with self._pool.acquire() as conn:
                await _record(conn, batch, self._disable_after)
        except asyncpg.DeadlockDetectedError:
            self._outcomes[:0] = batch  # two recorders crossed on endpoint rows: try again
            self._outcomes_ready.set()
        except BaseException:
            self._outcomes[:0] = batch
            raise


async def _record(conn: Connection, batch: list[Outcome], disable_after: dt.timedelta) -> None:
    await conn.execute(
        RECORD,
        [o.delivery_id for o in batch],
        [o.attempt for o in batch],
        [o.succeeded for o in batch],
        [o.response_code for o in batch],
        [o.error for o in batch],
        [o.attempted_at for o in batch],
        [o.duration_ms for o in batch],
        [o.next_at for o in batch],
        disable_after,
    )


def now() -> dt.datetime:
    """The current instant, in UTC."""
    return dt.datetime.now(dt.UTC)


async def status(conn: Connection) -> tuple[int | None, int, int, int]:
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
