"""What controllers are given: the app's resources as Litestar dependencies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

import asyncpg
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import SkipValidation

from events.log import Connection, head_position
from events.writer import GroupCommitter
from projections import projector
from projections.answers import RuleCache
from projections.stream_cache import StreamCache
from service.checkpoints import CheckpointCache
from service.http.problems import problem
from service.webhooks.targets import check_target

T = TypeVar("T")
TargetCheck = Callable[[str], Awaitable[None]]  # refuses a webhook URL it will not send to
MIN_POSITION_WAIT_SECONDS = 2.0


class ReadSide:
    """The pool and the caches point-in-time answers are read through."""

    __slots__ = ("pool", "rules", "streams")

    def __init__(self, pool: asyncpg.Pool, streams: StreamCache, rules: RuleCache) -> None:
        self.pool = pool
        self.streams = streams
        self.rules = rules

    async def answer(
        self,
        min_position: int | None,
        question: Callable[[Connection], Awaitable[T]],
        *,
        read_models: bool = False,
    ) -> T:
        """Answer ``question`` on a pooled connection, once the ledger holds ``min_position``."""
        async with self.pool.acquire() as conn:
            if min_position is not None:
                await reach(conn, min_position, read_models)
            return await question(conn)


async def reach(conn: Connection, min_position: int, read_models: bool) -> None:
    """Wait (bounded) until the read models, if used, hold ``min_position``.

    Answers come from the log, whose head includes every acknowledged event (a receipt is
    given after its commit): a position beyond the head was never acknowledged, so that is
    answered at once rather than after the wait. The read models may trail the head by a
    moment; that is what the wait is for.
    """
    head = await head_position(conn)
    if min_position > head:
        raise problem(
            503,
            f"the ledger has not reached position {min_position} yet (its head is at {head}); "
            "retry shortly",
        )
    if not read_models:
        return
    deadline = time.monotonic() + MIN_POSITION_WAIT_SECONDS
    while (status := await projector.status(conn)).position < min_position:
        if status.error is not None:  # stopped on an event it cannot apply: no use waiting
            raise problem(
                503,
                f"the read models stopped at position {status.position}; retry later",
            )
        if time.monotonic() >= deadline:
            raise problem(
                503,
                f"the ledger has not reached position {min_position} yet; retry shortly",
            )
        await asyncio.sleep(0.02)


def dependencies(state: State) -> dict[str, Provide]:
    """Provide the resources the lifespan puts in ``state``, by name, to any handler.

    Each provider takes no argument and only reads ``state``: Litestar then calls it without
    parsing anything, so a dependency costs a request about as much as a dictionary lookup.
    A handler takes one dependency where it can: Litestar resolves several independent ones
    in a task group of their own.
    """

    async def pool() -> asyncpg.Pool:
        return state.pool  # type: ignore[no-any-return]

    async def committer() -> GroupCommitter:
        return state.committer  # type: ignore[no-any-return]

    async def reads() -> ReadSide:
        return state.reads  # type: ignore[no-any-return]

    async def verify_lock() -> asyncio.Lock:
        return state.verify_lock  # type: ignore[no-any-return]

    async def checkpoints() -> CheckpointCache:
        return state.checkpoints  # type: ignore[no-any-return]

    async def webhook_targets() -> Any:
        allow_private = state.settings.webhook_allow_private
        return partial(check_target, resolver=state.resolver, allow_private=allow_private)

    providers: list[Callable[[], Awaitable[Any]]] = [
        pool,
        committer,
        reads,
        verify_lock,
        webhook_targets,
        checkpoints,
    ]
    return {p.__name__: Provide(p) for p in providers}


# What handlers annotate their dependencies with; each parameter is named as its provider.
Pool = NamedDependency[asyncpg.Pool]
Committer = NamedDependency[GroupCommitter]
Reads = NamedDependency[ReadSide]
VerifyLock = NamedDependency[asyncio.Lock]
WebhookTargets = NamedDependency[SkipValidation[TargetCheck]]
Checkpoints = NamedDependency[CheckpointCache]
