"""Following ``GET /events/subscribe`` across reconnections, for both forms of the client.

Nothing here does I/O: each client opens the stream with what :meth:`Follower.request` says,
hands the answer to :meth:`Follower.check` and every line to :meth:`Follower.feed`, and after a
disconnection waits :meth:`Follower.pause` seconds before opening it again. The follower keeps
the position of the last event yielded, so a reconnection resumes after it (``Last-Event-ID``)
and an event sent again is never yielded twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import msgspec

from service.client_requests import problem_error, retry_after
from service.client_types import Event

PATH = "/events/subscribe"
RECONNECT_MAX_SECONDS = 5.0  # the longest a subscription waits between reconnections
# Reads wait for the next line for longer than the service's keep-alive comments apart (15 s).
STREAM_TIMEOUT = httpx.Timeout(10.0, read=60.0)
_EVENT = msgspec.json.Decoder(Event)


class RetryLaterError(Exception):
    """The service asked to be called again later (503, 429): reconnect, do not give up."""


class Follower:
    """The state of one subscription across reconnections: what was yielded, what comes next."""

    def __init__(self, after: int, types: Sequence[str] | None, stream: str | None) -> None:
        self.last = after
        self.types = list(types) if types else None
        self.stream = stream
        self.failures = 0
        self.retry_after: float | None = None
        self._data: list[str] = []

    def request(self) -> dict[str, Any]:
        """The query and headers that resume after the last event yielded."""
        params = {"after": self.last, "type": self.types, "stream": self.stream}
        return {
            "params": {k: v for k, v in params.items() if v is not None},
            "headers": {"Last-Event-ID": str(self.last), "Accept": "text/event-stream"},
        }

    def check(self, answer: httpx.Response) -> None:
        """Raise on a refusal (its body read): to retry later (503, 429), or ProblemError."""
        self._data = []  # a line cut off by the last disconnection is dropped
        if answer.status_code in (429, 503):
            self.retry_after = retry_after(answer)
            raise RetryLaterError
        if answer.status_code >= 400:
            raise problem_error(answer)

    def feed(self, line: str) -> Event | None:
        """Take one line of the stream; return an event when one is complete and new."""
        if line.startswith("data:"):
            self._data.append(line[5:].removeprefix(" "))
        elif not line and self._data:
            event = _EVENT.decode("\n".join(self._data))
            self._data = []
            self.failures = 0
            if event.position <= self.last:  # already yielded before a reconnection
                return None
            self.last = event.position
            return event
        return None

    def pause(self, max_wait: float) -> float:
        """How long to wait before reconnecting: the service's word, else a growing backoff."""
        self.failures += 1
        if self.retry_after is not None:
            wait, self.retry_after = self.retry_after, None
            return min(wait, max_wait)
        return min(0.05 * float(2 ** min(self.failures, 10)), max_wait)
