"""Time limits on reading a request, so that slow senders cannot hold what others need.

A client that sends its headers or its body a byte at a time would otherwise keep a connection,
and (while its body arrives) one of the ``LEDGER_MAX_CONCURRENT_REQUESTS`` places, for as long
as it likes: 25 such clients were enough to turn every other request away with 503. So:

- the headers must arrive within ``LEDGER_HEADER_TIMEOUT`` of the connection opening (or of
  the first byte of a later request on it), or the connection is closed without an answer:
  uvicorn has no such limit, so its protocol is extended here;
- the body must arrive within ``LEDGER_BODY_TIMEOUT`` of the headers, or the answer is 408;
- and the body is read before the request takes a place among those in flight, so that
  requests still arriving never count against the bound.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.http.connections import HalfCloseProtocol
from service.http.problems import problem


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose headers come too slowly."""

    header_timeout: ClassVar[float] = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the clock for the first request's headers."""
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        """Start the clock for a later request's headers (keep-alive bounds the wait before)."""
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        """Stop the clock: the headers are in."""
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the clock with the connection."""
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        # No answer: a client this slow is not reading one, and a 408 would be more to send.
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def with_header_timeout(seconds: float) -> type[HeaderDeadlineProtocol]:
    """Return the protocol class for uvicorn's ``http``: this limit on headers, and every
    request received before a half-close answered (service/http/connections.py)."""
    return type(
        "ServiceProtocol", (HeaderDeadlineProtocol, HalfCloseProtocol), {"header_timeout": seconds}
    )


class BodyDeadline(ASGIMiddleware):
    """Read a request's whole body within the limit, before the request is admitted.

    Placed before ``InFlight``: the body is then handed to the application from memory. A body
    past ``max_bytes`` is not read further; the application refuses it (413) as before.
    """

    scopes = (ScopeType.HTTP,)

    def __init__(self, seconds: float, max_bytes: int) -> None:
        self.seconds = seconds
        self.max_bytes = max_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Buffer the body within the time limit, or answer 408 and close the connection."""
        if not _has_body(scope):
            await next_app(scope, receive, send)
            return
        try:
            async with asyncio.timeout(self.seconds):
                received = await self._read(receive)
        except TimeoutError:
            raise problem(
                408,
                f"the request body did not arrive within {self.seconds:g} s "
                "(LEDGER_BODY_TIMEOUT); send it at once",
                headers={"Connection": "close"},
            ) from None
        pending = iter(received)

        async def replay() -> ReceiveMessage:
            message = next(pending, None)
            return message if message is not None else await receive()

        await next_app(scope, replay, send)

    async def _read(self, receive: Receive) -> list[ReceiveMessage]:
        received: list[ReceiveMessage] = []
        size = 0
        while True:
            message = await receive()
            received.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                return received
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return received


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False
