"""A local webhook receiver: records what arrives and answers as a test tells it to."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    """One request as it arrived."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()


@dataclass(frozen=True)
class Answer:
    """What to answer: a status and extra headers."""

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    trickle_seconds: float = 0.0  # send the body a byte at a time over this long


class Receiver:
    """An HTTP server on 127.0.0.1 in a thread of its own.

    ``answer`` decides each response from the request and the number of requests before it
    (default: 200 to everything).
    """

    def __init__(self, answer: Callable[[Received, int], Answer] | None = None) -> None:
        self.answer = answer or (lambda _request, _count: Answer())
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died mid-request: nothing arrived
                    self.close_connection = True
                    return
                request = Received(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.monotonic(),
                )
                with receiver._lock:
                    count = len(receiver.received)
                    receiver.received.append(request)
                answer = receiver.answer(request, count)
                body = b"ok" if not answer.trickle_seconds else b"x" * 20
                self.send_response(answer.status)
                for name, value in answer.headers:
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                if not answer.trickle_seconds:
                    self.wfile.write(body)
                    return
                for byte in body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(answer.trickle_seconds / len(body))

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def snapshot(self) -> list[Received]:
        """Return what has arrived so far."""
        with self._lock:
            return list(self.received)

    def ids(self) -> list[str]:
        """Return the webhook-id of every request, in arrival order."""
        return [r.headers["webhook-id"] for r in self.snapshot()]

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        """Serve in the background while the block runs."""
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(timeout=5)
