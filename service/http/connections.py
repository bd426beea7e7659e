"""Connections whose client has finished sending still receive every answer they are owed."""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Answers that go on for as long as the client reads them (Server-Sent Events): nothing is owed
# to a client that has stopped, so its end-of-file ends them, as it always did.
STREAMING_PATHS = frozenset({"/events/subscribe"})


class HalfCloseProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering the requests received before the client's EOF.

    A client may write its requests (pipelined or not) and then shut down its sending side, as
    ``nc -N``, scripts and some proxies do. uvicorn takes that end-of-file for a disconnect and
    drops every answer still owed, although an append among those requests may be committed: a
    receipt lost for an event that is stored. Here the connection stays open for writing until
    each request received in full is answered, then closes. A request whose body was cut off by
    the EOF can never complete, and is treated as disconnected, as before.
    """

    _client_done = False

    def eof_received(self) -> bool:  # type: ignore[override]
        """Keep the connection open for the answers owed; say whether it stays open."""
        self._client_done = True
        cycle = self.cycle
        if cycle is None or (cycle.response_complete and not self.pipeline):
            return False  # nothing is owed: the transport closes, as it always did
        streaming = cycle.scope["path"] in STREAMING_PATHS
        if (cycle.more_body or streaming) and not cycle.response_complete:
            cycle.disconnected = True  # its body will never arrive, or nobody reads its answer
            cycle.message_event.set()
        self._close_when_answered()
        return True

    def on_response_complete(self) -> None:
        """Start the next pipelined request, or close once the last owed answer is out."""
        super().on_response_complete()
        if self._client_done:
            self._close_when_answered()

    def _close_when_answered(self) -> None:
        cycle = self.cycle
        answered = cycle is None or cycle.response_complete or cycle.disconnected
        if answered and not self.pipeline and not self.transport.is_closing():
            self.transport.close()
