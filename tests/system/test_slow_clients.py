"""Slow senders against a real ``ledger serve``: headers and bodies have time limits, and
clients still sending do not take the places that others need.

Raw sockets send a request a byte at a time (the pacing of the trickle is the test's own);
outcomes are waited on as conditions: the server closing the connection, or its answer.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests import factories
from tests.support import ServerProcess, Tokens, make_tokens, unique_id

LIMIT = 1.0  # LEDGER_HEADER_TIMEOUT and LEDGER_BODY_TIMEOUT of the server under test
PACE = 0.2  # seconds between two bytes of a trickle


@pytest.fixture
def strict_server(
    db_url: str, ledger_processes: Callable[..., ServerProcess]
) -> Iterator[ServerProcess]:
    env = {"LEDGER_HEADER_TIMEOUT": f"{LIMIT}s", "LEDGER_BODY_TIMEOUT": f"{LIMIT}s"}
    server = ledger_processes(db_url, **env)
    server.start()
    yield server
    server.terminate()


def _connect(server: ServerProcess) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", server.port))
    conn.settimeout(PACE)
    return conn


def _trickle_until_answered(conn: socket.socket, rest: bytes, within: float) -> bytes:
    """Send ``rest`` a byte per PACE until the server answers or closes; return what came."""
    deadline = time.monotonic() + within
    answer = b""
    while time.monotonic() < deadline:
        try:
            chunk = conn.recv(65536)
        except TimeoutError:
            if rest:
                try:
                    conn.sendall(rest[:1])
                except OSError:  # closed by the server
                    return answer
                rest = rest[1:]
            continue
        except ConnectionResetError:
            return answer
        if not chunk:
            return answer  # closed
        answer += chunk
    raise AssertionError(f"neither answered nor closed within {within} s: {answer!r}")


def _post_head(tokens: Tokens, length: int) -> bytes:
    return (
        "POST /events HTTP/1.1\r\nHost: ledger\r\nContent-Type: application/json\r\n"
        f"Authorization: {tokens.header()['Authorization']}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def test_slow_headers_are_cut_off(strict_server: ServerProcess) -> None:
    # given a client that sends its request line and headers a byte at a time
    conn = _connect(strict_server)
    request = b"GET /health HTTP/1.1\r\nHost: ledger\r\nX-Padding: " + b"a" * 200 + b"\r\n\r\n"
    started = time.monotonic()
    # when it goes on past the header limit
    answer = _trickle_until_answered(conn, request, within=LIMIT + 5)
    elapsed = time.monotonic() - started
    conn.close()
    # then the server closed the connection at the limit, without an answer
    assert answer == b""
    assert LIMIT * 0.9 <= elapsed < LIMIT + 2


def test_an_idle_connection_is_closed_at_the_header_limit(strict_server: ServerProcess) -> None:
    conn = _connect(strict_server)
    answer = _trickle_until_answered(conn, b"", within=LIMIT + 5)
    conn.close()
    assert answer == b""


async def test_a_slow_body_gets_408(strict_server: ServerProcess, db_url: str) -> None:
    tokens = await make_tokens(db_url)
    body = json.dumps(factories.company_registered(unique_id())).encode()
    # given a client whose headers come at once and whose body comes a byte at a time
    conn = _connect(strict_server)
    conn.sendall(_post_head(tokens, len(body)) + body[:1])
    started = time.monotonic()
    # when the body takes longer than the limit
    answer = _trickle_until_answered(conn, body[1:], within=LIMIT + 5)
    elapsed = time.monotonic() - started
    conn.close()
    # then it is answered 408 problem+json at the limit, and the connection closed
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer
    assert b"content-type: application/problem+json" in head.lower()
    assert b"connection: close" in head.lower()
    assert b"LEDGER_BODY_TIMEOUT" in payload
    assert elapsed < LIMIT + 2
    async with httpx.AsyncClient(base_url=strict_server.base_url) as http:
        stored = await http.get("/events", headers=tokens.header())
    assert stored.json()["events"] == []  # nothing of it was appended


async def test_slow_uploaders_do_not_lock_out_other_clients(
    db_url: str, ledger_processes: Callable[..., ServerProcess]
) -> None:
    tokens = await make_tokens(db_url)
    # a bound on requests in flight smaller than the number of slow uploaders
    server = ledger_processes(
        db_url, LEDGER_MAX_CONCURRENT_REQUESTS="20", LEDGER_BODY_TIMEOUT="60s"
    )
    server.start()
    uploaders: list[socket.socket] = []
    statuses: list[int] = []
    try:
        # given 25 connections each sending the body of an append a byte at a time
        for _ in range(25):
            conn = _connect(server)
            conn.sendall(_post_head(tokens, 10_000) + b"{")
            uploaders.append(conn)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            for _ in range(10):
                for conn in uploaders:  # the trickle goes on
                    conn.sendall(b" ")
                await asyncio.sleep(PACE)  # pacing the trickle, not waiting for an outcome
                # when an ordinary client reads and appends meanwhile
                envelope = factories.company_registered(unique_id())
                read = await http.get("/events", headers=tokens.header())
                appended = await http.post("/events", json=envelope, headers=tokens.header())
                statuses += [read.status_code, appended.status_code]
    finally:
        for conn in uploaders:
            conn.close()
        server.terminate()
    # then it is answered as usual
    assert set(statuses) <= {200, 201}, statuses
