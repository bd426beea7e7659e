"""``GET /events/subscribe``: the log as Server-Sent Events, caught up and then live."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Request, get
from litestar.params import HeaderParameter, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from events.vocabulary import STREAM_PATTERN
from service.http.auth import BEARER, SCOPE_OPT
from service.http.dependencies import Reads
from service.http.problems import problem
from service.http.routes.events import event_types
from service.subscriptions import Hub, TooManySubscribersError, follow

MAX_POSITION = 2**63 - 1  # bigint


@dataclass
class Frames(ServerSentEventMessage):
    """SSE messages already encoded (events, or a comment), written as they are."""

    frames: bytes = b""

    def encode(self) -> bytes:
        """Return the frames: each event was encoded once, for every subscriber."""
        return self.frames


def _resume_from(after: int, last_event_id: str | None) -> int:
    """The position to resume after: ``Last-Event-ID`` when a client reconnects, else ``after``."""
    if last_event_id is None:
        return after
    text = last_event_id.strip()
    if not text.isascii() or not text.isdigit() or int(text) > MAX_POSITION:
        message = f"{last_event_id[:40]!r} is not an event position (a whole number, 0 or more)"
        raise problem(
            400,
            f"Last-Event-ID: {message}",
            errors=[{"field": "Last-Event-ID", "message": message}],
        )
    return int(text)


@get(
    "/events/subscribe",
    opt={SCOPE_OPT: "events:read"},
    security=BEARER,
    media_type="text/event-stream",
)
async def subscribe(
    request: Request[Any, Any, Any],
    reads: Reads,
    after: Annotated[
        int, QueryParameter(ge=0, le=MAX_POSITION, description="position to start after")
    ] = 0,
    type_: Annotated[
        list[str] | None, QueryParameter(name="type", description="event types to include")
    ] = None,
    stream: Annotated[
        str | None,
        QueryParameter(pattern=STREAM_PATTERN, description="company:<id> or export-rule:<id>"),
    ] = None,
    last_event_id: Annotated[
        str | None,
        HeaderParameter(name="Last-Event-ID", description="resume after this position"),
    ] = None,
) -> ServerSentEvent:
    """Follow the log: every matching event after ``after``, then each new one as it commits.

    Each message's ``id`` is the event's position and its data the event as ``GET /events``
    shows it. A comment is sent after a quiet while; a subscriber too slow to keep up is sent
    a final comment saying where to resume, and disconnected.
    """
    types = event_types(type_)
    start = _resume_from(after, last_event_id)
    hub: Hub = request.app.state.hub
    try:
        subscriber = hub.subscriber(types, stream)
    except TooManySubscribersError as exc:
        raise problem(503, f"{exc}; retry later") from None
    heartbeat = request.app.state.settings.subscription_heartbeat_seconds
    frames = follow(hub, reads.read, subscriber, start, heartbeat)
    return ServerSentEvent(_messages(frames), headers={"Cache-Control": "no-cache"})


async def _messages(frames: AsyncIterator[bytes]) -> AsyncIterator[Frames]:
    async for chunk in frames:
        yield Frames(frames=chunk)
