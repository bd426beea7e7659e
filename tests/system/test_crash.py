"""Crashes and shutdowns of a real server process in the middle of a burst of appends.

What a client was told must hold after any stop: every acknowledged event is stored with the
position and hash of its receipt, the log stays gapless and verifiable, batches are all or
nothing, and nothing that was not sent appears.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest

from events.integrity import verify_store
from tests import factories as f
from tests.support import ServerProcess, Tokens, connected, unique_id

APPENDERS = 16
BATCH_SIZE = 10
ACKNOWLEDGED_BEFORE_CRASH = 200


@pytest.fixture
def servers(db_url: str, ledger_processes: Callable[..., ServerProcess]) -> Any:
    """Build server processes on this test's database; any still running are killed at the end."""
    return lambda: ledger_processes(db_url)


@dataclass
class Burst:
    """Everything the appenders sent, and what the server acknowledged."""

    sent: dict[str, dict[str, Any]] = field(default_factory=dict)  # event_id -> envelope
    batches: list[list[str]] = field(default_factory=list)
    acknowledged: dict[str, dict[str, Any]] = field(default_factory=dict)  # event_id -> receipt
    refused: dict[str, int] = field(default_factory=dict)  # event_id -> status (non-2xx)
    unexpected: list[tuple[int, str]] = field(default_factory=list)
    in_flight: int = 0
    enough: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: bool = False  # set just before the server is stopped
    target: int = ACKNOWLEDGED_BEFORE_CRASH


async def _appender(
    base_url: str, token: str, number: int, companies: list[str], burst: Burst
) -> None:
    """Append singles and batches of ten until the server stops answering."""
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        i = 0
        while True:
            company = companies[(number + i) % len(companies)]
            if i % 3 == 0:
                envelopes = [
                    f.valuation_reported(company, str(1000 + j)) for j in range(BATCH_SIZE)
                ]
                payload: dict[str, Any] = {"events": envelopes}
                burst.batches.append([e["event_id"] for e in envelopes])
            else:
                envelopes = [f.round_announced(company)]
                payload = envelopes[0]
            for envelope in envelopes:
                burst.sent[envelope["event_id"]] = envelope
            burst.in_flight += 1
            try:
                response = await client.post("/events", json=payload)
            except httpx.HTTPError:
                return  # the server is gone (or going): this request's fate is unknown
            finally:
                burst.in_flight -= 1
            if response.status_code in (200, 201):
                body = response.json()
                receipts = body.get("receipts", [body])
                for receipt in receipts:
                    burst.acknowledged[receipt["event_id"]] = receipt
                if len(burst.acknowledged) >= burst.target:
                    burst.enough.set()
            else:
                for envelope in envelopes:
                    burst.refused[envelope["event_id"]] = response.status_code
                if not (burst.stopping and response.status_code == 503):
                    burst.unexpected.append((response.status_code, response.text))
            i += 1


async def _start_burst(
    server: ServerProcess, tokens: Tokens, burst: Burst
) -> list[asyncio.Task[None]]:
    companies = [unique_id() for _ in range(4)]
    tasks = [
        asyncio.create_task(_appender(server.base_url, tokens.write, n, companies, burst))
        for n in range(APPENDERS)
    ]
    waiter = asyncio.create_task(burst.enough.wait())
    done, _ = await asyncio.wait([waiter, *tasks], timeout=60, return_when=asyncio.FIRST_COMPLETED)
    if waiter not in done:
        waiter.cancel()
        for task in tasks:
            task.cancel()
        failures = [t.exception() for t in done if not t.cancelled() and t.exception()]
        raise AssertionError(f"the burst never reached {burst.target} receipts: {failures}")
    assert not burst.unexpected, burst.unexpected[:3]
    return tasks


async def _finish_burst(tasks: list[asyncio.Task[None]]) -> None:
    """Wait for every appender to notice that the server is gone."""
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=60)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors


async def _stored(db_url: str) -> list[asyncpg.Record]:
    async with connected(db_url) as conn:
        return await conn.fetch("SELECT position, event_id, hash FROM events ORDER BY position")


async def _all_events(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    after: int | None = 0
    while after is not None:
        response = await client.get("/events", params={"after": after, "limit": 1000})
        assert response.status_code == 200, response.text
        page = response.json()
        events.extend(page["events"])
        after = page["next_after"]
    return events


async def _cli_verify(db_url: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.cli",
        "verify",
        env={**os.environ, "DATABASE_URL": db_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode or 0, output.decode()


def _assert_acknowledged_are_stored(burst: Burst, by_id: dict[str, Any]) -> None:
    for event_id, receipt in burst.acknowledged.items():
        event = by_id.get(event_id)
        assert event is not None, f"acknowledged {event_id} was lost"
        assert (event["position"], event["hash"]) == (receipt["position"], receipt["hash"])


async def test_acknowledged_appends_survive_kill_9(
    servers: Any, db_url: str, tokens: Tokens
) -> None:
    # given: a server taking a burst of singles and batches from 16 concurrent clients
    server: ServerProcess = servers()
    server.start()
    burst = Burst()
    tasks = await _start_burst(server, tokens, burst)

    # when: it is killed with SIGKILL while requests are in flight
    in_flight_at_kill = burst.in_flight
    server.kill()
    await _finish_burst(tasks)
    assert in_flight_at_kill > 0, "nothing was in flight when the server was killed"
    assert len(burst.acknowledged) >= ACKNOWLEDGED_BEFORE_CRASH
    assert not burst.unexpected, burst.unexpected[:3]

    # then: a new server on the same database starts and shows every acknowledged event
    restarted: ServerProcess = servers()
    restarted.start()
    async with httpx.AsyncClient(
        base_url=restarted.base_url, headers=tokens.header("all"), timeout=30
    ) as client:
        events = await _all_events(client)
        by_id = {e["event_id"]: e for e in events}
        _assert_acknowledged_are_stored(burst, by_id)

        # and: positions are gapless, and every stored event is one that was sent, unchanged
        assert [e["position"] for e in events] == list(range(1, len(events) + 1))
        assert len(by_id) == len(events)
        for event in events:
            sent = burst.sent.get(event["event_id"])
            assert sent is not None, f"{event['event_id']} was never sent"
            assert (event["type"], event["data"]) == (sent["type"], sent["data"])

        # and: batches are all or nothing
        for batch in burst.batches:
            stored = [event_id in by_id for event_id in batch]
            assert all(stored) or not any(stored), f"a batch was stored in part: {stored}"

        # and: the chain is intact, by the API and by the command line
        report = (await client.get("/ledger/verify")).json()
        assert report["intact"] is True, report
        assert report["checked"] == len(events)
        code, output = await _cli_verify(db_url)
        assert code == 0, output

        # and: the log goes on from where it stopped
        after = await client.post("/events", json=f.company_registered(unique_id()))
        assert after.status_code == 201, after.text
        assert after.json()["position"] == len(events) + 1


async def test_sigterm_drains_in_flight_appends_and_exits_cleanly(
    servers: Any, db_url: str, tokens: Tokens
) -> None:
    # given: a server taking a burst of appends from 16 concurrent clients
    server: ServerProcess = servers()
    server.start()
    burst = Burst(target=100)
    tasks = await _start_burst(server, tokens, burst)

    # when: it is stopped with SIGTERM while requests are in flight (the clients keep reading)
    in_flight_at_stop = burst.in_flight
    burst.stopping = True
    exit_code = await asyncio.to_thread(server.terminate)
    await _finish_burst(tasks)
    assert in_flight_at_stop > 0, "nothing was in flight when the server was stopped"

    # then: no request got an answer other than success (or 503 while shutting down)
    assert not burst.unexpected, burst.unexpected[:3]

    # and: every request answered 2xx is stored as its receipt says; refused ones are not
    stored = await _stored(db_url)
    by_id = {
        str(row["event_id"]): {"position": row["position"], "hash": bytes(row["hash"]).hex()}
        for row in stored
    }
    _assert_acknowledged_are_stored(burst, by_id)
    for event_id in burst.refused:
        assert event_id not in by_id, f"{event_id} was refused but stored"
    assert [row["position"] for row in stored] == list(range(1, len(stored) + 1))
    assert all(str(row["event_id"]) in burst.sent for row in stored)
    for batch in burst.batches:
        present = [event_id in by_id for event_id in batch]
        assert all(present) or not any(present), f"a batch was stored in part: {present}"
    async with connected(db_url) as conn:
        report = await verify_store(conn)
    assert report.intact, report

    # and: the process ended by itself with status 0.
    assert exit_code == 0, f"ledger serve exited with {exit_code} after SIGTERM"
