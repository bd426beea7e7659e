"""Webhook receivers for the benchmarks: asyncio HTTP/1.1 servers in a process of their own.

    python benchmarks/harness/receivers.py PORT[,PORT...]

Each answers 200 at once. A POST records an arrival (port, webhook-id, time); a GET answers
every arrival so far as JSON; a DELETE forgets them.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

Arrival = tuple[int, str, float]


class Receiver(asyncio.Protocol):
    """One connection: parse requests as they arrive, answer each at once."""

    def __init__(self, port: int, arrivals: list[Arrival]) -> None:
        self.port = port
        self.arrivals = arrivals
        self.buffer = b""
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # uvloop's transports are not asyncio.Transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (request := self._next_request()) is not None:
            self._answer(*request)

    def _next_request(self) -> tuple[str, dict[str, str]] | None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        lines = self.buffer[:end].decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        if len(self.buffer) < end + 4 + length:
            return None
        self.buffer = self.buffer[end + 4 + length :]
        return lines[0].split(" ", 1)[0], headers

    def _answer(self, method: str, headers: dict[str, str]) -> None:
        body = b""
        if method == "POST":
            self.arrivals.append((self.port, headers.get("webhook-id", ""), time.time()))
        elif method == "GET":
            body = json.dumps(self.arrivals).encode()
        elif method == "DELETE":
            self.arrivals.clear()
        assert self.transport is not None
        self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


def serve(ports: list[int]) -> None:
    """Run the receivers until killed."""
    import uvloop

    arrivals: list[Arrival] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for port in ports:
            await loop.create_server(
                lambda p=port: Receiver(p, arrivals), "127.0.0.1", port, backlog=1024
            )
        await asyncio.Event().wait()

    uvloop.run(main())


@contextmanager
def receivers(ports: list[int]) -> Iterator[subprocess.Popen[bytes]]:
    """Run the receivers in a process of their own while the body runs."""
    from harness.processes import wait_listening  # not at the top: the process runs this file

    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), ",".join(map(str, ports))],
        start_new_session=True,
    )
    try:
        for port in ports:
            wait_listening(port)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


if __name__ == "__main__":
    serve([int(p) for p in sys.argv[1].split(",")])
