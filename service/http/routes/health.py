"""Liveness and readiness, and the metrics that Prometheus scrapes."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import asyncpg
from litestar import Request, Response, get
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from events.chain import format_instant
from events.log import head_position
from projections import projector
from service.checkpoints import CheckpointCache
from service.http import metrics as m
from service.http.dependencies import Checkpoints, Committer, Pool, Reads
from service.replicas import Replicas
from service.schemas import (
    Health,
    Liveness,
    ProjectionHealth,
    Readiness,
    ReplicaHealth,
    SigningHealth,
    WebhookHealth,
)
from service.webhooks.outbox import delivery_status

log = logging.getLogger(__name__)


@get("/health")
async def health(
    committer: Committer, pool: Pool, reads: Reads, checkpoints: Checkpoints
) -> Response[Health]:
    """Report the database, the head position, each standby's lag, and whether the log signs."""
    standbys = replica_health(reads.replicas)
    append_task = "running" if committer.alive else "stopped"
    try:
        async with pool.acquire(timeout=2) as conn:
            position = await head_position(conn)
            read_models = await projector.status(conn)
            cursor, pending, failing, disabled = await delivery_status(conn)
        signing = await _signing(checkpoints)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        body = Health(
            status="unavailable",
            database="unreachable",
            head_position=None,
            projections={},
            webhooks=None,
            append_task=append_task,
            append_queue=committer.queued,
            replicas=standbys,
        )
        return Response(body, status_code=503, headers={"Retry-After": "1"})
    forked = signing.status == "stopped"
    body = Health(
        status="forked" if forked else "ok" if committer.alive else "unavailable",
        database="reachable",
        head_position=position,
        projections={
            projector.NAME: ProjectionHealth(
                position=read_models.position,
                lag=position - read_models.position,
                error=read_models.error,
            )
        },
        webhooks=WebhookHealth(
            position=position if cursor is None else cursor,
            lag=0 if cursor is None else position - cursor,
            pending_deliveries=pending,
            failing_endpoints=failing,
            disabled_endpoints=disabled,
        ),
        append_task=append_task,
        append_queue=committer.queued,
        replicas=standbys,
        signing=signing,
    )
    return Response(body, status_code=200 if committer.alive and not forked else 503)


async def _signing(checkpoints: CheckpointCache) -> SigningHealth:
    latest = await checkpoints.latest()
    signed = latest.checkpoint
    return SigningHealth(
        status="stopped" if latest.fork else "signing" if signed else "none yet",
        tree_size=signed.tree_size if signed else None,
        signed_at=format_instant(signed.signed_at) if signed else None,
        fork=latest.fork.describe() if latest.fork else None,
    )


@get("/health/live", sync_to_thread=False)
def live() -> Liveness:
    """Answer 200 while the process serves requests; touches no database (for a liveness probe)."""
    return Liveness(status="ok")


@get("/health/ready")
async def ready(committer: Committer, pool: Pool) -> Response[Readiness]:
    """Answer 200 when the database is reachable and appends are taken, else 503."""
    append_task = "running" if committer.alive else "stopped"
    try:
        async with pool.acquire(timeout=2) as conn:
            await conn.fetchval("SELECT 1")
        database = "reachable"
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        database = "unreachable"
    if database == "reachable" and committer.alive:
        return Response(Readiness(status="ok", database=database, append_task=append_task))
    body = Readiness(status="unavailable", database=database, append_task=append_task)
    return Response(body, status_code=503, headers={"Retry-After": "1"})


def replica_health(replicas: Replicas) -> dict[str, ReplicaHealth]:
    """Each standby's state as the last check saw it, also set in the metrics' gauges."""
    usable = {s.name for s in replicas.healthy()}
    found = {}
    for s in replicas.standbys:
        state = "serving" if s.name in usable else "lagging" if s.up else "unreachable"
        found[s.name] = ReplicaHealth(
            state=state, head_position=s.head, lag_events=s.lag_events, lag_seconds=s.lag_seconds
        )
        m.REPLICA_UP.labels(s.name).set(1 if s.up else 0)
        m.REPLICA_LAG_EVENTS.labels(s.name).set(s.lag_events)
        m.REPLICA_LAG_SECONDS.labels(s.name).set(s.lag_seconds)
    return found


_refreshed = {"at": 0.0}
_refreshing = asyncio.Lock()
REFRESH_SECONDS = 1.0  # scrapes more often than this share one reading


async def refresh_gauges(pool: Pool) -> None:
    """Read the head, the projector's checkpoint and the dispatcher's state into the gauges."""
    async with _refreshing:
        if time.monotonic() - _refreshed["at"] < REFRESH_SECONDS:
            return
        await _read_gauges(pool)
        _refreshed["at"] = time.monotonic()


async def _read_gauges(pool: Pool) -> None:
    async with pool.acquire(timeout=2) as conn:
        head = await head_position(conn)
        models = await projector.status(conn)
        cursor, pending, failing, disabled = await delivery_status(conn)
    m.HEAD.set(head)
    m.PROJECTOR_LAG.set(head - models.position)
    m.DISPATCHER_LAG.set(0 if cursor is None else head - cursor)
    m.PENDING.set(pending)
    m.FAILING.set(failing)
    m.DISABLED.set(disabled)


@get("/metrics", include_in_schema=False)
async def metrics(reads: Reads, request: Request[Any, Any, Any]) -> Response[bytes]:
    """Every metric in Prometheus' text format (public, like /health), gauges read just now."""
    try:
        await refresh_gauges(reads.pool)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning("metrics without fresh gauges: %s", exc)
    replica_health(reads.replicas)
    hub = request.app.state.hub
    m.SUBSCRIBERS.set(hub.slots)
    m.SUBSCRIBERS_LIVE.set(hub.live)
    streams = reads.streams
    m.STREAM_CACHE_EVENTS.set(streams.events)
    m.STREAM_CACHE_STREAMS.set(len(streams))
    m.STREAM_CACHE_BYTES.set(streams.bytes)
    memory = request.app.state.checkpoints.memory
    m.TREE_MEMORY_LEAVES.set(memory.size if memory is not None else 0)
    m.TREE_MEMORY_BYTES.set(memory.held_bytes if memory is not None else 0)
    return Response(generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})
