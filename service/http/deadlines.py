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

_late: set[asyncio.Task[None]] = set()  # 503s being sent for requests past the limit


class RequestDeadline(ASGIMiddleware):
    """Answer 503 when a request has not begun its answer within ``seconds``."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Run the request with a timer; past the limit, answer 503 and cancel the request.

        The request runs in the task that received it (a task of its own, and a wait for it,
        would cost each request more than the rest of this layer): the timer sends the 503
        from a task of its own, at once, however long what the request waits for takes to
        wind down once cancelled; whatever the request would send afterwards is dropped.
        """
        if scope["path"] in UNBOUNDED:
            await next_app(scope, receive, send)
            return
        request = _Request(self.seconds, scope, receive, send)
        timer = asyncio.get_running_loop().call_later(self.seconds + GRACE_SECONDS, request.expire)
        try:
            await next_app(scope, receive, request.send)
        except BaseException:
            if request.late is None:
                raise
            # Past the limit: whatever ended the request (this limit's cancellation, or what
            # it caused) is not answered; the 503 is.
        finally:
            timer.cancel()
        if request.late is not None:
            if request.task.cancelling():
                request.task.uncancel()  # the cancellation was this limit's own
            await asyncio.shield(request.late)  # the 503 must be out before the request ends


class _Request:
    """One request's side of the limit: what it sent, and its 503 once past the limit."""

    __slots__ = ("answering", "late", "receive", "scope", "seconds", "sink", "task")

    def __init__(self, seconds: float, scope: Scope, receive: Receive, send: Send) -> None:
        self.seconds = seconds
        self.scope, self.receive, self.sink = scope, receive, send
        task = asyncio.current_task()
        assert task is not None, "a request is handled in a task"
        self.task = task
        self.answering = False
        self.late: asyncio.Task[None] | None = None

    async def send(self, message: Message) -> None:
        if self.late is not None:  # answered 503 already
            return
        self.answering = True
        await self.sink(message)

    def expire(self) -> None:
        """Past the limit: unless an answer is on its way, answer 503 and cancel the request."""
        if self.answering or self.task.done():
            return
        self.late = asyncio.get_running_loop().create_task(self._answer())
        _late.add(self.late)
        self.late.add_done_callback(_late.discard)
        self.task.cancel()

    async def _answer(self) -> None:
        exc = problem(
            503,
            f"no answer within {self.seconds:g} s (LEDGER_REQUEST_TIMEOUT): the database is "
            "slow or unavailable; retry shortly",
        )
        app = self.scope["litestar_app"]
        request = app.request_class(scope=self.scope, receive=self.receive, send=self.sink)
        response = exc.to_response(request).to_asgi_response(app=None, request=request)
        with contextlib.suppress(Exception):  # the client may have gone
            await response(self.scope, self.receive, self.sink)
