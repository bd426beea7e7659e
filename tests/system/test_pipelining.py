"""Requests pipelined on one connection are all answered, in order, by a real ``ledger serve``.

Appends and queries of several sizes are written back to back on one socket before any answer
is read, their bodies framed by Content-Length or chunked; the answers are read with either
framing. Each answer must be the one of its request (the request id is echoed), and every
event the database holds must have had its receipt delivered, also when the client shuts down
its sending side as soon as its requests are written.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests import factories as f
from tests.support import ServerProcess, Tokens, unique_id


class Answer:
    """One HTTP/1.1 response: status, headers (lower-case names) and body."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)


class Reader:
    """Read responses off a socket one by one, whatever their framing."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buffer = sock, b""

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("the server closed the connection")
        self.buffer += data

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            self._fill()
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def _take(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self._fill()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def answer(self) -> Answer:
        status = int(self._line().split(b" ")[1])
        headers: dict[str, str] = {}
        while line := self._line():
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while size := int(self._line().split(b";")[0], 16):
                body += self._take(size)
                assert self._take(2) == b"\r\n"
            while self._line():  # trailers, then the empty line
                pass
        else:
            body = self._take(int(headers.get("content-length", "0")))
        return Answer(status, headers, body)


def request(
    method: str, path: str, token: str, rid: str, body: bytes | None = None, chunk: int = 0
) -> bytes:
    """Spell one request; a body is sent chunked in pieces of ``chunk`` bytes if given."""
    head = [f"{method} {path} HTTP/1.1", "Host: ledger", f"Authorization: Bearer {token}"]
    head.append(f"X-Request-ID: {rid}")
    payload = b""
    if body is not None:
        head.append("Content-Type: application/json")
        if chunk:
            head.append("Transfer-Encoding: chunked")
            pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)]
            payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
        else:
            head.append(f"Content-Length: {len(body)}")
            payload = body
    return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


def batch(company: str, n: int, note_bytes: int = 0) -> dict[str, Any]:
    """A batch of ``n`` valuations, each with a note making the body larger."""
    events = []
    for i in range(n):
        envelope = f.valuation_reported(company, str(1000 + i))
        if note_bytes:
            envelope["metadata"] = {"note": "x" * note_bytes}
        events.append(envelope)
    return {"events": events}


def plan(company: str, round_: int) -> Iterator[tuple[str, str, dict[str, Any] | None, int]]:
    """The requests of one round: (method, path, body, chunk size), appends and queries mixed."""
    yield "POST", "/events", f.company_registered(company), 0
    yield "GET", f"/companies/{company}", None, 0
    yield "POST", "/events", f.valuation_reported(company, "5"), 7  # tiny chunks
    yield "POST", "/events", batch(company, 50 * round_), 0
    yield "GET", f"/streams/company:{company}/events?limit=1000", None, 0
    yield "POST", "/events", batch(company, 20, note_bytes=4_000 * round_), 16_384
    yield "POST", "/events", {"type": "nonsense"}, 0  # an error answer between the others
    yield "GET", f"/events/{uuid.uuid4()}", None, 0  # and a 404
    yield "POST", "/events", f.valuation_reported(company, "6"), 0
    yield "GET", "/health", None, 0
    yield "GET", f"/companies/{company}/valuations", None, 0
    yield "GET", "/metrics", None, 0


def pipeline(
    port: int, token: str, rounds: int, half_close: bool
) -> list[tuple[dict[str, Any] | None, Answer]]:
    """Send every request of every round on one connection at once; read all the answers."""
    sent: list[tuple[str, dict[str, Any] | None]] = []
    wire = b""
    for round_ in range(1, rounds + 1):
        company = unique_id()
        for method, path, body, chunk in plan(company, round_):
            rid = f"r{len(sent)}"
            encoded = json.dumps(body).encode() if body is not None else None
            wire += request(method, path, token, rid, encoded, chunk)
            sent.append((rid, body))
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(wire)
        if half_close:  # all requests are in; the answers remain to be read
            sock.shutdown(socket.SHUT_WR)
        reader = Reader(sock)
        answers = [reader.answer() for _ in sent]
        assert reader.buffer == b""
        if half_close:  # and once they are, the server closes its side too
            assert sock.recv(1) == b""
    for (rid, _), answer in zip(sent, answers, strict=True):
        assert answer.headers["x-request-id"] == rid, (rid, answer.status, answer.body[:200])
    return [(body, answer) for (_, body), answer in zip(sent, answers, strict=True)]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("half_close", [False, True], ids=["open", "half-closed"])
async def test_pipelined_requests_are_all_answered_in_order(
    db_url: str, tokens: Tokens, artifacts: Path, half_close: bool
) -> None:
    # given a real server
    server = ServerProcess(db_url, artifacts / "pipelining.log")
    server.start()
    try:
        # when appends and queries are pipelined on one connection, three rounds of growing size
        answered = await asyncio.to_thread(pipeline, server.port, tokens.all, 3, half_close)
    finally:
        server.terminate()
    # then each answer is its request's, appends were acknowledged and queries answered
    receipts: dict[str, int] = {}
    for body, answer in answered:
        if body is None or body.get("type") != "nonsense":
            assert answer.status in (200, 201, 404), answer.body[:300]
        if answer.status == 201:
            assert body is not None
            sent = body.get("events", [body])
            got = answer.json().get("receipts", [answer.json()])
            assert [r["event_id"] for r in got] == [e["event_id"] for e in sent]
            receipts.update({r["event_id"]: r["position"] for r in got})
    assert [a.status for b, a in answered if b is not None and b.get("type") == "nonsense"] == [
        400
    ] * 3
    # and every event the database holds had its receipt delivered, at its position
    conn = await asyncpg.connect(db_url)
    try:
        stored = {
            str(r["event_id"]): r["position"]
            for r in await conn.fetch("SELECT event_id, position FROM events")
        }
    finally:
        await conn.close()
    assert stored == receipts
    assert len(stored) == 3 * 3 + (50 + 100 + 150) + 3 * 20


def cut_short(port: int, token: str, envelope: dict[str, Any]) -> bytes:
    """Send one whole append, then one whose body stops half-way, and shut down sending."""
    whole = request("POST", "/events", token, "whole", json.dumps(envelope).encode())
    body = json.dumps(f.company_registered(unique_id())).encode()
    cut = request("POST", "/events", token, "cut", body)[: -len(body) // 2]
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(whole + cut)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while data := sock.recv(65536):  # until the server closes: it must not wait forever
            received += data
    return received


@pytest.mark.timeout(120)
async def test_a_body_cut_off_by_the_clients_eof_is_dropped_and_the_connection_closed(
    db_url: str, tokens: Tokens, artifacts: Path
) -> None:
    server = ServerProcess(db_url, artifacts / "pipelining-cut.log")
    server.start()
    try:
        envelope = f.company_registered(unique_id())
        received = await asyncio.to_thread(cut_short, server.port, tokens.all, envelope)
        # then the whole request is answered, and the cut one neither answered nor appended
        assert received.startswith(b"HTTP/1.1 201 ")
        assert received.count(b"HTTP/1.1 ") == 1
        assert envelope["event_id"].encode() in received
    finally:
        server.terminate()
    conn = await asyncpg.connect(db_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM events") == 1
    finally:
        await conn.close()
