"""Overload of a real server process: a bound on requests in flight (503)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import httpx

from tests import factories
from tests.support import ServerProcess, make_tokens, unique_id, wait_for


async def test_beyond_the_bound_requests_are_refused_at_once(
    db_url: str, ledger_processes: Callable[..., ServerProcess]
) -> None:
    tokens = await make_tokens(db_url)
    server = ledger_processes(db_url, LEDGER_MAX_CONCURRENT_REQUESTS="2")
    server.start()
    held: list[socket.socket] = []
    try:
        # two appends whose bodies are still arriving: they hold both places
        envelope = httpx.Request(
            "POST",
            f"{server.base_url}/events",
            json=factories.company_registered(unique_id()),
            headers=tokens.header(),
        )
        body = envelope.read()
        head = "POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        head += f"Authorization: {tokens.header()['Authorization']}\r\n"
        head += f"Content-Length: {len(body)}\r\n\r\n"
        for _ in range(2):
            conn = socket.create_connection(("127.0.0.1", server.port))
            conn.sendall(head.encode() + body[:10])
            held.append(conn)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:

            async def both_held() -> bool:  # /metrics is answered whatever the load
                text = (await http.get("/metrics")).text
                in_progress = 'ledger_http_requests_in_progress{app_name="ledger",method="POST"'
                return any(
                    line.startswith(in_progress) and line.endswith(" 2.0")
                    for line in text.splitlines()
                )

            await wait_for(both_held)
            started = time.monotonic()
            refused = await http.get("/events", headers=tokens.header())
            elapsed = time.monotonic() - started
            health = await http.get("/health")
            for conn in held:  # the two finish their bodies and are answered
                conn.sendall(body[10:])
            answers = [conn.recv(4096).split(b"\r\n", 1)[0] for conn in held]
            after = await http.get("/events", headers=tokens.header())
    finally:
        for conn in held:
            conn.close()
        server.terminate()
    assert refused.status_code == 503 and elapsed < 1
    assert refused.headers["retry-after"] and refused.json()["title"] == "Service overloaded"
    assert health.status_code == 200
    assert sorted(answers) == [b"HTTP/1.1 200 OK", b"HTTP/1.1 201 Created"]  # same event twice
    assert after.status_code == 200
