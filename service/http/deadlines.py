"""One time limit for a whole request: LEDGER_REQUEST_TIMEOUT, whatever it waits for.

Each database statement has that limit already, but a request can wait for several things in
turn: a connection from the pool, the group committer's earlier groups, its own commit, and,
when PostgreSQL hangs, asyncpg waiting to cancel a statement that timed out. One append took
twice the limit that way. So the whole request is bounded here: past the limit it is answered
503 with Retry-After, and what it was waiting for is cancelled and left to wind down (a
connection still being cancelled is returned to the pool in the background).

An append is answered by the group committer itself just before this limit, naming its
event_ids so that a retry with them tells whether they were committed (an append that was not
acknowledged is committed once or not at all). This limit is the backstop for the rest.
"""

from __future__ import annotations

import asyncio
import contextlib

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from service.http.connections import STREAMING_PATHS
from service.http.problems import problem

GRACE_SECONDS = 0.2  # lets an append's own answer, which names its event_ids, come first
# Answered without this limit: /ledger/verify hashes the whole log, however long it is, and a
# subscription is an answer that goes on for as long as the subscriber reads it.
UNBOUNDED = frozenset({"/ledger/verify", "/health", "/metrics"} | STREAMING_PATHS)

_abandoned: set[asyncio.Task[None]] = set()  # cancelled handlers still winding down


class RequestDeadline(ASGIMiddleware):
    """Answer 503 when a request has not begun its answer within ``seconds``."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Run the request in a task of its own; stop waiting for it at the limit."""
        if scope["path"] in UNBOUNDED:
            await next_app(scope, receive, send)
            return
        answering = False
        abandoned = False

        async def guarded_send(message: Message) -> None:
            nonlocal answering
            if abandoned:  # answered 503 already
                return
            answering = True
            await send(message)

        task = asyncio.ensure_future(next_app(scope, receive, guarded_send))
        try:
            done, _ = await asyncio.wait({task}, timeout=self.seconds + GRACE_SECONDS)
            if not done and answering:  # an answer is on its way: let it finish
                await asyncio.wait({task})
                done = {task}
        except asyncio.CancelledError:
            task.cancel()
            raise
        if task in done:
            task.result()  # its exception, if any, is answered as usual
            return
        abandoned = True
        task.cancel()
        _abandoned.add(task)
        task.add_done_callback(_forget)
        raise problem(
            503,
            f"no answer within {self.seconds:g} s (LEDGER_REQUEST_TIMEOUT): the database is "
            "slow or unavailable; retry shortly",
        )


def _forget(task: asyncio.Task[None]) -> None:
    _abandoned.discard(task)
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.result()  # retrieved, so that asyncio does not log it as never retrieved
