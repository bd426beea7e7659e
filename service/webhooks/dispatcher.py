"""The dispatcher: turns new events into deliveries and sends them, at least once.

Each pass of its loop does two things in the database, each a single statement:

1. **Fan-out.** For enabled endpoints whose cursor is behind the head of the log (cursor rows
   taken ``FOR UPDATE SKIP LOCKED``, so several dispatchers share them), the matching events
   after the cursor become delivery rows and the cursor moves, in one transaction: an event is
   never skipped and never becomes two deliveries (a unique index says so too).
2. **Claim.** Due deliveries (``FOR UPDATE SKIP LOCKED`` again) are leased: their attempt count
   goes up, their next attempt moves to the end of the lease and the lease names its owner,
   committed before anything is sent. Another dispatcher sees them as not due while the owner
   lives, so an attempt is sent once; the leases of a dispatcher that died fall due as soon as
   its advisory lock is seen free (service/webhooks/owner.py), and the delivery is sent again
   (at least once, never lost). The lease's end bounds only an owner that hangs.

A pass sends each statement only when it may find something: the fan-out after an append
(none while no endpoint is enabled) or a change announced on the webhooks channel, the claim
after deliveries were queued or a batch of slots came free; and both at least every
``POLL_SECONDS``, when retries fall due.

Sends run concurrently up to a bound, and up to a share of it per endpoint so that one endpoint
that never answers cannot hold every slot; each goes through aiohttp with one time limit, to an
address checked at connection time. Outcomes are written back in batches by one recorder: the
attempt's row, the delivery's next step (done, retry at a time on the schedule, or failed) and
the endpoint's health (a 410 disables it, as do days of failures with no success).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import functools
import logging
import time

import asyncpg

from events.log import Connection
from events.wakes import woken
from service.settings import Settings
from service.webhooks.attempts import attempt
from service.webhooks.outbox import (
    FAN_OUT_ENDPOINTS,
    Claimed,
    DeliveryOutcome,
    claim,
    claimed_from,
    fan_out,
    reclaim,
    record_outcomes,
)
from service.webhooks.owner import Owner
from service.webhooks.targets import Resolver
from service.webhooks.transport import Sender

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0  # retries fall due, and NOTIFY can be lost: look at least this often
GATHER_SECONDS = 0.01  # how long outcomes may wait for others to be recorded with them
MAX_RECORD_TRIES = 5  # a batch of outcomes the database keeps refusing is then logged and dropped
DATABASE_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class Dispatcher:
    """One process's dispatcher; any number may run against one database."""

    def __init__(
        self, pool: asyncpg.Pool, settings: Settings, resolver: Resolver, url: str
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._resolver = resolver
        self._owner = Owner(url)
        self._slots = settings.webhook_concurrency
        self._share = min(settings.webhook_max_in_flight_per_endpoint, self._slots)
        self._in_flight: collections.Counter[str] = collections.Counter()
        self._lease = dt.timedelta(seconds=2 * settings.webhook_timeout_seconds + 5)
        self._disable_after = dt.timedelta(seconds=settings.webhook_disable_after_seconds)
        self._wake = asyncio.Event()
        # What a pass needs to do, so that most passes send no statement at all. Each counter
        # goes up when something may have made work (an append, a freed slot, a notification);
        # a pass that found none notes the count it saw, which a rise during the pass outlives.
        self._changes = 0  # rises on everything but an append: endpoints, replays, the clock
        self._appends = 0
        self._fanned = (-1, -1)  # (changes, appends) seen by the last fan-out that found none
        self._claimable = 0
        self._claimed = -1  # the count seen by the last claim that left nothing due
        self._full: set[str] = set()  # endpoints the last claim left at their share
        self._endpoints = True  # whether the last fan-out saw an enabled endpoint
        self._looked_at = -POLL_SECONDS
        self._freed = 0  # slots freed since the last pass
        self._batch = max(1, self._share // 4)
        self._outcomes: list[DeliveryOutcome] = []
        self._outcomes_ready = asyncio.Event()
        self._sending: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        """Look for every kind of work now (a new endpoint, a replay, a reconnect)."""
        self._everything_due()
        self._wake.set()

    def _everything_due(self) -> None:
        self._changes += 1
        self._claimable += 1

    def appended(self) -> None:
        """Look for events to fan out now: the log has grown."""
        self._appends += 1
        self._wake.set()

    async def run(self) -> None:
        """Dispatch until cancelled; outcomes of sends already made are recorded on the way out."""
        sender = Sender(self._settings, self._resolver)
        recorder = asyncio.create_task(self._record_forever(), name="webhook-recorder")
        try:
            await self._loop(sender)
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
                await self._flush()  # the others take back whatever is left unrecorded
            await sender.aclose()
            await self._owner.release()

    async def _loop(self, sender: Sender) -> None:
        while True:
            self._wake.clear()
            try:
                more = await self._pass(sender)
            except DATABASE_ERRORS as exc:
                log.warning("webhook dispatch paused: %s", exc)
                more = False
            except Exception:  # a fault of ours: log it and keep dispatching
                log.exception("a webhook dispatch pass failed")
                await asyncio.sleep(POLL_SECONDS)
                more = False
            if not more:
                await woken(self._wake, POLL_SECONDS)

    async def _pass(self, sender: Sender) -> bool:
        """Fan out and claim, each when it may find something; return whether to go on at once."""
        if time.monotonic() - self._looked_at >= POLL_SECONDS:
            # Retries fall due, leases end and NOTIFY can be lost: look at everything anyway.
            self._looked_at = time.monotonic()
            self._everything_due()
            reclaiming = True
        else:
            reclaiming = False
        self._freed = 0
        seen = (self._changes, self._appends if self._endpoints else self._fanned[1])
        fanning = seen != self._fanned
        if not (reclaiming or fanning or self._may_claim()):
            return False
        owner = await self._owner.hold()
        behind, free = False, 0
        rows: list[asyncpg.Record] = []
        async with self._pool.acquire() as conn:
            if reclaiming:
                await self._reclaim(conn)
            if fanning:
                behind = await self._fan_out(conn, seen)
            if self._may_claim():
                rows, free = await self._claim(conn, owner)
        for row in rows:
            self._start(sender, claimed_from(row))
        return behind or (free > 0 and len(rows) == free)

    def _may_claim(self) -> bool:
        return len(self._sending) < self._slots and self._claimable != self._claimed

    async def _claim(self, conn: Connection, owner: int) -> tuple[list[asyncpg.Record], int]:
        """Lease what the free slots may take; return the rows and how many slots were free."""
        # Taken together, with no wait between: a send that ends after this moment counts
        # for the next claim (``_sent``), one that ended before is in ``busy``.
        free = self._slots - len(self._sending)
        busy = {e: n for e, n in self._in_flight.items() if n}
        claimable = self._claimable
        rows = await claim(conn, free, self._lease, owner, busy, self._share)
        if len(rows) < free:  # every due delivery of an endpoint below its share is taken
            self._claimed = claimable
        # Those at their share may have more due: one of their sends ending makes room.
        counts = collections.Counter(busy)
        counts.update(row["endpoint_id"] for row in rows)
        self._full = {e for e, n in counts.items() if n >= self._share}
        return rows, free

    async def _fan_out(self, conn: Connection, seen: tuple[int, int]) -> bool:
        """Fan out once; return whether cursors are still behind."""
        fanned = await fan_out(conn)
        self._endpoints = fanned["enabled"]
        if fanned["deliveries"]:
            self._claimable += 1
        behind = fanned["endpoints"] == FAN_OUT_ENDPOINTS or fanned["behind"] > 0
        if not behind:
            # Every cursor is at the head this statement saw: nothing to do until the log
            # grows (and only if an endpoint is enabled: a new or enabled endpoint says so on
            # the webhooks channel) or something else changes.
            self._fanned = seen
        return bool(behind)

    def _start(self, sender: Sender, claimed: Claimed) -> None:
        self._in_flight[claimed.endpoint_id] += 1
        task = asyncio.create_task(self._send(sender, claimed))
        self._sending.add(task)
        task.add_done_callback(functools.partial(self._sent, claimed.endpoint_id))

    async def _reclaim(self, conn: Connection) -> None:
        """Take back the leases of dispatchers that have gone."""
        taken = await reclaim(conn)
        if taken:
            self._claimable += 1
            log.info("took back %d webhook deliveries leased by dispatchers that stopped", taken)

    def _sent(self, endpoint_id: str, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        if endpoint_id in self._full:  # it may have due deliveries left
            self._full.discard(endpoint_id)
            self._claimable += 1
        self._in_flight[endpoint_id] -= 1
        left = self._in_flight[endpoint_id]
        if not left:
            del self._in_flight[endpoint_id]
        self._freed += 1
        # A claim per freed slot would cost statements per send: claim when a batch of slots
        # is free, or at once when an endpoint (or the dispatcher) has nothing left in flight.
        if self._freed >= self._batch or not left or not self._sending:
            self._wake.set()

    async def _send(self, sender: Sender, claimed: Claimed) -> None:
        outcome = await attempt(sender, claimed, self._settings)
        self._outcomes.append(outcome)  # the list now: the recorder replaces it as it takes it
        self._outcomes_ready.set()

    async def _record_forever(self) -> None:
        refused = 0
        while True:
            await self._outcomes_ready.wait()
            if self._sending and len(self._outcomes) < self._batch:
                # More outcomes are on their way: gather them, one statement for many. Only
                # the record waits (the leases hold meanwhile); no send does.
                await asyncio.sleep(GATHER_SECONDS)
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

    def _look_when_due(self, outcomes: list[DeliveryOutcome]) -> None:
        """Claim again when the soonest retry recorded falls due, if before the next look."""
        soonest = min((o.retry_in for o in outcomes if o.retry_in is not None), default=None)
        if soonest is not None and soonest < POLL_SECONDS:
            asyncio.get_running_loop().call_later(soonest, self._retry_due)

    def _retry_due(self) -> None:
        self._claimable += 1
        self._wake.set()

    async def _flush(self) -> None:
        batch, self._outcomes = self._outcomes, []
        if not batch:
            return
        try:
            async with self._pool.acquire() as conn:
                await record_outcomes(conn, batch, self._disable_after)
            self._look_when_due(batch)
        except asyncpg.DeadlockDetectedError:
            self._outcomes[:0] = batch  # two recorders crossed on endpoint rows: try again
            self._outcomes_ready.set()
        except BaseException:
            self._outcomes[:0] = batch
            raise
