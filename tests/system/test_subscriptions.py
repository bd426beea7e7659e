"""``GET /events/subscribe`` against a running ``ledger serve``: catch-up, live, resumption."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest

from service.client import AsyncLedgerClient, LedgerClient
from tests import factories
from tests.support import ServerProcess, Tokens, make_tokens, unique_id, wait_for

pytestmark = pytest.mark.timeout(300)


def server_with(db_url: str, artifacts: Path, name: str, **env: str) -> Iterator[ServerProcess]:
    process = ServerProcess(db_url, artifacts / f"subscriptions-{name}.log", env=env)
    process.start()
    yield process
    process.terminate()


@pytest.fixture
def server(db_url: str, artifacts: Path) -> Iterator[ServerProcess]:
    yield from server_with(db_url, artifacts, "server", LEDGER_SUBSCRIPTION_HEARTBEAT="0.2")


async def events_of(
    base: str, token: str, headers: dict[str, str] | None = None, **params: Any
) -> AsyncIterator[tuple[int, dict[str, Any]] | str]:
    """Yield each SSE event of a subscription as (id, data), and each comment as text."""
    timeout = httpx.Timeout(30.0)
    async with (
        httpx.AsyncClient(base_url=base, timeout=timeout) as http,
        http.stream(
            "GET",
            "/events/subscribe",
            params=params,
            headers={"Authorization": f"Bearer {token}", **(headers or {})},
        ) as answer,
    ):
        assert answer.status_code == 200, await answer.aread()
        assert answer.headers["content-type"].startswith("text/event-stream")
        event_id, data = None, None
        async for line in answer.aiter_lines():
            if line.startswith(":"):
                yield line[1:].strip()
            elif line.startswith("id: "):
                event_id = int(line[4:])
            elif line.startswith("data: "):
                data = msgspec.json.decode(line[6:])
            elif not line and data is not None:
                assert event_id == data["position"]
                yield event_id, data
                event_id, data = None, None


async def collect(base: str, token: str, count: int, **params: Any) -> list[int]:
    """Return the positions of the first ``count`` events a subscriber is sent."""
    seen: list[int] = []
    async with contextlib.aclosing(events_of(base, token, **params)) as items:
        async for item in items:
            if isinstance(item, tuple):
                seen.append(item[0])
                if len(seen) == count:
                    return seen
    raise AssertionError(f"the stream ended after {len(seen)} events")


async def write(base: str, tokens: Tokens, events: int, batch: int = 10) -> None:
    """Append ``events`` events about a new company, ``batch`` at a time."""
    company = unique_id()
    async with httpx.AsyncClient(base_url=base, headers=tokens.header("write")) as http:
        sent = 0
        while sent < events:
            n = min(batch, events - sent)
            envelopes = [
                factories.company_registered(company)
                if sent == 0 and i == 0
                else factories.valuation_reported(company, str(1000 + sent + i))
                for i in range(n)
            ]
            answer = await http.post("/events", json={"events": envelopes}, timeout=30)
            assert answer.status_code == 201, answer.text
            sent += n


async def test_every_subscriber_sees_every_event_once_in_order(
    db_url: str, server: ServerProcess
) -> None:
    # given 8 subscribers, half of them subscribing before the writers start
    tokens = await make_tokens(db_url)
    total = 2000
    early = [asyncio.create_task(collect(server.base_url, tokens.read, total)) for _ in range(4)]
    await asyncio.sleep(0.5)
    # when 4 writers append 2,000 events, and the others subscribe while they write
    writers = [asyncio.create_task(write(server.base_url, tokens, total // 4)) for _ in range(4)]
    await asyncio.sleep(0.5)
    late = [asyncio.create_task(collect(server.base_url, tokens.read, total)) for _ in range(4)]
    await asyncio.gather(*writers)
    seen = await asyncio.gather(*early, *late)
    # then each saw every position exactly once, in order
    for positions in seen:
        assert positions == list(range(1, total + 1))


async def test_a_subscriber_cut_off_resumes_with_last_event_id(
    db_url: str, server: ServerProcess
) -> None:
    # given a subscriber that reads 300 events while writers append, and is then cut off
    tokens = await make_tokens(db_url)
    total = 1200
    writers = [asyncio.create_task(write(server.base_url, tokens, total // 2)) for _ in range(2)]
    first = await collect(server.base_url, tokens.read, 300)
    # when it reconnects with the last id it saw
    rest = await collect(
        server.base_url, tokens.read, total - 300, headers={"Last-Event-ID": str(first[-1])}
    )
    await asyncio.gather(*writers)
    # then it has seen each event once
    assert first + rest == list(range(1, total + 1))


async def test_the_client_resumes_by_itself_and_never_yields_twice(
    db_url: str, artifacts: Path
) -> None:
    # given a server that cuts off subscribers more than 50 events behind
    tokens = await make_tokens(db_url)
    gen = server_with(db_url, artifacts, "client", LEDGER_SUBSCRIBER_BUFFER="50")
    server = next(gen)
    try:
        await write(server.base_url, tokens, 500, batch=100)
        # when the client subscribes, is cut off by a burst, and follows on
        with LedgerClient(server.base_url, tokens.read) as ledger:
            events = ledger.subscribe(after=100)
            first = [next(events).position for _ in range(10)]
            await write(server.base_url, tokens, 400, batch=200)
            rest = [next(events).position for _ in range(790)]
            events.close()
        # then every event after 100 came once, in order
        assert first + rest == list(range(101, 901))

        async def follow() -> list[int]:
            seen = []
            async with AsyncLedgerClient(server.base_url, tokens.read) as ledger:
                events = ledger.subscribe(after=850, types=["valuation_reported"])
                async with contextlib.aclosing(events):
                    async for event in events:
                        seen.append(event.position)
                        if len(seen) == 50:
                            return seen
            return seen

        assert await follow() == list(range(851, 901))
    finally:
        next(gen, None)


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert found is not None
    return int(found.group(1))


def metric(base: str, name: str) -> float:
    text = httpx.get(f"{base}/metrics").text
    found = re.search(rf"^{name} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_a_subscriber_that_stops_reading_is_disconnected_and_memory_stays_bounded(
    db_url: str, artifacts: Path
) -> None:
    # given a subscriber that sends its request and then never reads
    tokens = await make_tokens(db_url)
    gen = server_with(db_url, artifacts, "stalled", LEDGER_SUBSCRIBER_BUFFER="1000")
    server = next(gen)
    try:
        assert server.process is not None
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", server.port))
        stalled.sendall(
            f"GET /events/subscribe HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {tokens.read}\r\n\r\n".encode()
        )
        await wait_for(lambda: _async(metric(server.base_url, "ledger_subscribers_live") == 1))
        await write(server.base_url, tokens, 1000, batch=500)
        before = rss_kib(server.process.pid)
        # when 20,000 events are appended
        await write(server.base_url, tokens, 20_000, batch=1000)
        # then it is disconnected, and the server grew by far less than what it was not sent
        await wait_for(
            lambda: _async(metric(server.base_url, "ledger_subscribers_disconnected_total") == 1)
        )
        assert metric(server.base_url, "ledger_subscribers_live") == 0
        grown = rss_kib(server.process.pid) - before
        assert grown < 40_000, f"the server grew by {grown} KiB"
        stalled.close()
    finally:
        next(gen, None)


async def _async(value: bool) -> bool:
    return value


async def test_idle_subscribers_hold_no_database_connections(
    db_url: str, server: ServerProcess
) -> None:
    # given a server at rest
    tokens = await make_tokens(db_url)
    await write(server.base_url, tokens, 10)
    name = db_url.rsplit("/", 1)[1].split("?")[0]
    conn = await asyncpg.connect(db_url)

    async def connections() -> int:
        return int(
            await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name)
        )

    try:
        at_rest = await connections()
        # when 200 subscribers follow the log and wait
        tasks = [asyncio.create_task(collect(server.base_url, tokens.read, 11)) for _ in range(200)]
        await wait_for(
            lambda: _async(metric(server.base_url, "ledger_subscribers_live") == 200), within=60
        )
        # then they hold no more than 2 database connections between them
        assert await connections() - at_rest <= 2
        await write(server.base_url, tokens, 1)
        assert all(len(p) == 11 for p in await asyncio.gather(*tasks))
    finally:
        await conn.close()


async def test_subscribers_beyond_the_limit_are_told_to_retry(db_url: str, artifacts: Path) -> None:
    tokens = await make_tokens(db_url)
    gen = server_with(db_url, artifacts, "limit", LEDGER_MAX_SUBSCRIBERS="1")
    server = next(gen)
    try:
        held = asyncio.create_task(collect(server.base_url, tokens.read, 1))
        await wait_for(lambda: _async(metric(server.base_url, "ledger_subscribers") == 1))
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            answer = await http.get("/events/subscribe", headers=tokens.header("read"))
        assert answer.status_code == 503
        assert answer.headers["Retry-After"]
        await write(server.base_url, tokens, 1)
        await held
    finally:
        next(gen, None)
