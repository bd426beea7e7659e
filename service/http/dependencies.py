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

from events.chain import format_instant
from events.log import Connection, head_position
from events.writer import GroupCommitter
from projections import projector
from projections.answers import RuleCache, Seen
from projections.stream_cache import StreamCache
from service.checkpoints import CheckpointCache
from service.http.problems import problem
from service.replicas import Replicas
from service.webhooks.targets import check_target

T = TypeVar("T")
A = TypeVar("A", bound=tuple[Any, ...])  # an answer: what was found, then what it reflects
TargetCheck = Callable[[str], Awaitable[None]]  # refuses a webhook URL it will not send to
MIN_POSITION_WAIT_SECONDS = 2.0


class ReadSide:
    """The databases and the caches point-in-time answers are read through.

    Reads go to a standby when there is a healthy one (service/replicas.py); the caches hold
    only what the log says, and each answer is bounded by the position its own connection
    read, so a cache filled from the primary stays right for a standby that trails it.
    """

    __slots__ = ("pool", "replicas", "rules", "streams")

    def __init__(
        self,
        pool: asyncpg.Pool,
        streams: StreamCache,
        rules: RuleCache,
        replicas: Replicas | None = None,
    ) -> None:
        self.pool = pool
        self.streams = streams
        self.rules = rules
        self.replicas = replicas or Replicas(pool)

    async def read(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """Run a read of the log on a standby if one is healthy, else on the primary."""
        return await self.replicas.read(None, work)

    async def primary(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """Run a read on the primary: proofs and checkpoints are the primary's tree."""
        async with self.pool.acquire() as conn:
            return await work(conn)

    async def answer(
        self,
        min_position: int | None,
        question: Callable[[Connection], Awaitable[A]],
        *,
        read_models: bool = False,
    ) -> A:
        """Answer ``question`` once the database it reads holds ``min_position``.

        The answer itself must reflect ``min_position``, not only the head it was read after.
        """

        async def on(conn: Connection) -> A:
            if min_position is not None:
                await reach(conn, min_position, read_models)
            return await question(conn)

        found = await self.replicas.read(min_position, on)
        if min_position is not None:
            reflects(found[1], min_position)
        return found


def reflects(seen: Seen, min_position: int) -> None:
    """Refuse an answer that reflects less than ``min_position``.

    Read after the head reached it, an answer as known now always does; one that does not was
    asked for as known at an instant before that position was recorded, which no wait mends.
    """
    if seen.position >= min_position:
        return
    message = (
        f"known_at is {format_instant(seen.known_at)}, before position {min_position} was "
        "recorded: ask for a later known_at, or none, to reflect it"
    )
    raise problem(422, message, errors=[{"field": "known_at", "message": message}])


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
