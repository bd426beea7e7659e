"""Every request answers within LEDGER_REQUEST_TIMEOUT while PostgreSQL hangs.

Every process of a PostgreSQL of this test's own is stopped with SIGSTOP (it accepts
connections in the kernel and answers nothing, not even a cancel request) while appends and
reads arrive at ``ledger serve``. Each must answer 503 with Retry-After within the one request
timeout, not one timeout per wait (the pool, the group committer, the commit). Once PostgreSQL
runs again, each append retried with its event_id is stored exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from events.migrate import migrate
from tests import factories
from tests.support import ServerProcess, connected, make_tokens, unique_id

TIMEOUT = 2.0  # LEDGER_REQUEST_TIMEOUT of the server under test
SLACK = 1.0  # scheduling on a shared machine; a second timeout is what must not happen


@pytest.fixture
def own_postgres() -> Iterator[Any]:
    """A PostgreSQL server for this test alone, so that stopping it harms no other test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
    with tempfile.TemporaryDirectory(prefix="ledger-hang-pg-") as data_dir:
        server: Any = pgserver.get_server(data_dir, cleanup_mode="stop")
        yield server
        server.cleanup()


def _postgres_processes(pgdata: Path) -> list[int]:
    """The postmaster of ``pgdata`` and every process it started."""
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
                    children.append(int(entry.name))
    return [postmaster, *children]


def _signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


async def test_requests_answer_within_the_request_timeout_while_postgres_hangs(
    own_postgres: Any, ledger_processes: Callable[..., ServerProcess]
) -> None:
    url = own_postgres.get_uri()
    async with connected(url) as conn:
        await migrate(conn)
    tokens = await make_tokens(url)
    server = ledger_processes(url, LEDGER_REQUEST_TIMEOUT=str(TIMEOUT))
    server.start()
    envelopes = [factories.company_registered(unique_id()) for _ in range(8)]
    pids: list[int] = []
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:

            async def timed(method: str, path: str, **kwargs: Any) -> tuple[Any, float]:
                started = time.monotonic()
                answer = await http.request(method, path, headers=tokens.header(), **kwargs)
                return answer, time.monotonic() - started

            for _ in range(3):  # warm: the tokens are known, the pool has connections
                first = factories.company_registered(unique_id())
                assert (await http.post("/events", json=first, headers=tokens.header())).is_success
                assert (await http.get("/events", headers=tokens.header())).is_success
            # given a PostgreSQL that hangs
            pids = _postgres_processes(Path(own_postgres.pgdata))
            _signal_all(pids, signal.SIGSTOP)
            # when appends and reads keep arriving
            calls = []
            for envelope in envelopes:
                calls.append(asyncio.create_task(timed("POST", "/events", json=envelope)))
                calls.append(asyncio.create_task(timed("GET", "/events?after=0")))
                await asyncio.sleep(0.1)  # pacing the arrivals
            answered = await asyncio.gather(*calls)
            _signal_all(pids, signal.SIGCONT)
            # then, once it runs again, each append retried with its event_id is stored once
            retried = []
            for envelope in envelopes:
                for _ in range(50):
                    answer = await http.post("/events", json=envelope, headers=tokens.header())
                    if answer.status_code != 503:
                        break
                    await asyncio.sleep(0.2)  # the service asked to retry shortly
                retried.append(answer.status_code)
    finally:
        _signal_all(pids, signal.SIGCONT)
        server.terminate()
    slow = [(round(e, 2), a.request.method, a.status_code) for a, e in answered]
    for answer, elapsed in answered:
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"]
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert elapsed < TIMEOUT + SLACK, slow
    assert set(retried) <= {200, 201}, retried
    async with connected(url) as conn:
        counts = await conn.fetch(
            "SELECT event_id::text, count(*) AS n FROM events WHERE event_id = ANY($1::uuid[])"
            " GROUP BY event_id",
            [e["event_id"] for e in envelopes],
        )
    assert sorted(r["event_id"] for r in counts) == sorted(e["event_id"] for e in envelopes)
    assert {r["n"] for r in counts} == {1}
