"""Overload: a rate per token (429 with Retry-After) and a bound on requests in flight (503)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx

from tests import factories
from tests.support import ServerProcess, client_for, make_tokens, unique_id, wait_for


async def test_a_token_over_its_rate_gets_429_and_others_do_not(db_url: str) -> None:
    tokens = await make_tokens(db_url)
    async with client_for(db_url, rate_limit=2.0, rate_burst=3) as client:
        answers = [await client.get("/events", headers=tokens.header("read")) for _ in range(4)]
        other = await client.get("/events", headers=tokens.header("all"))
        unauthenticated = await client.get("/events")
        health = await client.get("/health")

        async def allowed_again() -> bool:  # two per second: one is back within half a second
            answer = await client.get("/events", headers=tokens.header("read"))
            return bool(answer.status_code == 200)

        await wait_for(allowed_again, within=2)
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["status"] == 429
    assert other.status_code == 200  # the limit is per token
    assert unauthenticated.status_code == 401 and health.status_code == 200


async def test_beyond_the_bound_requests_are_refused_at_once(db_url: str, artifacts: Path) -> None:
    tokens = await make_tokens(db_url)
    server = ServerProcess(
        db_url, artifacts / "overload.log", env={"LEDGER_MAX_CONCURRENT_REQUESTS": "2"}
    )
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
