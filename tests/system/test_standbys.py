"""Reads from a hot standby made by ``ledger standby``: same answers, waits, failover."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from events.migrate import migrate
from tests import factories
from tests.support import ServerProcess, Tokens, free_port, make_tokens, unique_id

pytestmark = pytest.mark.timeout(300)
KEY_CACHE_SECONDS = 5.0  # service/keys.py: a checked key is trusted this long between loads


class Cluster:
    """A primary, a standby of it, and a service reading from both."""

    def __init__(
        self, server: Any, primary: str, standby: str, process: subprocess.Popen[bytes]
    ) -> None:
        self.server = server
        self.primary = primary
        self.standby = standby
        self.standby_process = process

    def stop_primary(self) -> None:
        from pgserver._commands import pg_ctl

        pg_ctl(
            ["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user
        )

    def start_primary(self) -> None:
        self.server.ensure_postgres_running()  # as it was started: same socket, same options


async def _wait_for_standby(url: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            conn = await asyncpg.connect(url)
            try:
                assert await conn.fetchval("SELECT pg_is_in_recovery()")
                await conn.fetchval("SELECT position FROM ledger_head")
                return
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            assert time.monotonic() < deadline, "the standby did not start"
            await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
def cluster(artifacts: Path) -> Iterator[Cluster]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
    with tempfile.TemporaryDirectory(prefix="ledger-primary-") as root:
        server: Any = pgserver.get_server(Path(root) / "primary", cleanup_mode="stop")
        admin = server.get_uri()

        async def prepare() -> str:
            conn = await asyncpg.connect(admin)
            await conn.execute("CREATE DATABASE ledger")
            await conn.close()
            url = server.get_uri("ledger")
            conn = await asyncpg.connect(url)
            await migrate(conn)
            await conn.close()
            return str(url)

        primary = asyncio.run(prepare())
        port = free_port()
        log = (artifacts / "standby.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "standby", "--primary", admin,
             "--data-dir", str(Path(root) / "standby"), "--port", str(port)],
            stdout=log, stderr=log, env=os.environ.copy(),
        )  # fmt: skip
        standby = f"postgresql://postgres@127.0.0.1:{port}/ledger"
        try:
            asyncio.run(_wait_for_standby(standby))
            yield Cluster(server, primary, standby, process)
        finally:
            process.terminate()
            process.wait(timeout=60)
            server.cleanup()


@pytest.fixture(scope="module")
def services(cluster: Cluster, artifacts: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """A service reading from the standby, and one reading from the primary alone."""
    replicated = ServerProcess(
        cluster.primary,
        artifacts / "standby-service.log",
        env={"LEDGER_READ_REPLICA_URLS": cluster.standby},
    )
    alone = ServerProcess(cluster.primary, artifacts / "primary-service.log")
    replicated.start()
    alone.start()
    yield replicated, alone
    replicated.terminate()
    alone.terminate()


@pytest.fixture(scope="module")
def tokens(cluster: Cluster) -> Tokens:
    return asyncio.run(make_tokens(cluster.primary))


def append(base: str, tokens: Tokens, envelopes: list[dict[str, Any]]) -> int:
    answer = httpx.post(f"{base}/events", json={"events": envelopes}, headers=tokens.header())
    assert answer.status_code == 201, answer.text
    return int(answer.json()["receipts"][-1]["position"])


def test_the_standby_answers_as_the_primary_does_and_says_so(
    services: tuple[ServerProcess, ServerProcess], tokens: Tokens
) -> None:
    # given a company written through the primary
    replicated, alone = services
    company = unique_id()
    position = append(
        replicated.base_url,
        tokens,
        [factories.company_registered(company), factories.valuation_reported(company)],
    )
    known_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2))
    # when both services are asked the same questions once they hold that position
    for path, params in [
        (f"/companies/{company}", {"known_at": known_at, "as_of": "2024-01-01"}),
        (f"/companies/{company}/valuations", {"known_at": known_at}),
        ("/export-rules", {"known_at": known_at, "as_of": "2024-01-01"}),
        ("/events", {"after": 0}),
    ]:
        query = {**params, "min_position": position} if path != "/events" else params
        from_standby = httpx.get(replicated.base_url + path, params=query, headers=tokens.header())
        from_primary = httpx.get(alone.base_url + path, params=query, headers=tokens.header())
        # then the answers are the same, and each names the database that answered
        assert from_standby.status_code == 200, from_standby.text
        assert from_standby.headers["Ledger-Served-By"] == "replica-1"
        assert from_primary.headers["Ledger-Served-By"] == "primary"
        if path == "/events":
            assert (
                from_standby.json()["events"][:position] == from_primary.json()["events"][:position]
            )
        else:
            assert from_standby.json() == from_primary.json()
    health = httpx.get(f"{replicated.base_url}/health").json()
    assert health["replicas"]["replica-1"]["state"] == "serving"


def test_a_delayed_standby_never_answers_without_the_write(
    cluster: Cluster, services: tuple[ServerProcess, ServerProcess], tokens: Tokens
) -> None:
    # given a standby that applies each commit 1.5 s after the primary
    replicated, _ = services
    delay(cluster.standby, "1500ms")
    try:
        outcomes = set()
        for _ in range(5):
            company = unique_id()
            # when a company is written and read back at once with its position
            position = append(replicated.base_url, tokens, [factories.company_registered(company)])
            answer = httpx.get(
                f"{replicated.base_url}/companies/{company}",
                params={"min_position": position},
                headers=tokens.header(),
            )
            # then the answer holds the write (after a wait), or asks to retry: never a 404
            assert answer.status_code in (200, 503), answer.text
            if answer.status_code == 503:
                assert answer.headers["Retry-After"]
            else:
                assert answer.json()["position"] >= position
                assert answer.headers["Ledger-Served-By"] == "replica-1"
            outcomes.add(answer.status_code)
        assert 200 in outcomes
    finally:
        delay(cluster.standby, "0")


def delay(url: str, value: str) -> None:
    async def set_it() -> None:
        conn = await asyncpg.connect(url)
        try:
            directory = await conn.fetchval("SHOW data_directory")
            path = Path(directory) / "postgresql.auto.conf"
            lines = [
                line
                for line in path.read_text().splitlines()
                if not line.startswith("recovery_min_apply_delay")
            ]
            path.write_text("\n".join([*lines, f"recovery_min_apply_delay = '{value}'", ""]))
            await conn.execute("SELECT pg_reload_conf()")
        finally:
            await conn.close()

    asyncio.run(set_it())


def test_the_standby_answers_while_the_primary_is_down(
    cluster: Cluster, services: tuple[ServerProcess, ServerProcess], tokens: Tokens
) -> None:
    # given a company the standby has replayed
    replicated, _ = services
    company = unique_id()
    position = append(
        replicated.base_url,
        tokens,
        [factories.company_registered(company), factories.valuation_reported(company)],
    )
    url = f"{replicated.base_url}/companies/{company}"
    before = httpx.get(url, params={"min_position": position}, headers=tokens.header(), timeout=30)
    assert before.status_code == 200, before.text
    # when the primary stops
    cluster.stop_primary()
    try:
        # then for longer than a key is cached, every query is answered by the standby as
        # before, while an append is refused
        started = time.monotonic()
        while time.monotonic() - started < KEY_CACHE_SECONDS + 1:
            answer = httpx.get(url, headers=tokens.header(), timeout=30)
            assert answer.status_code == 200, answer.text
            assert answer.headers["Ledger-Served-By"] == "replica-1"
            assert answer.json() == before.json()
        refused = httpx.post(
            f"{replicated.base_url}/events",
            json=factories.valuation_reported(company, value="7"),
            headers=tokens.header(),
            timeout=30,
        )
        assert refused.status_code == 503, refused.text
    finally:
        cluster.start_primary()
    # and once the primary is back, appends are taken again
    deadline = time.monotonic() + 30
    while True:
        answer = httpx.post(
            f"{replicated.base_url}/events",
            json=factories.valuation_reported(company, value="8"),
            headers=tokens.header(),
            timeout=30,
        )
        if answer.status_code == 201:
            break
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.2)
    # and the standby follows it again (its receiver reconnects within a few seconds)
    position = int(answer.json()["position"])
    while True:
        answer = httpx.get(url, params={"min_position": position}, headers=tokens.header())
        if answer.status_code == 200 and answer.headers["Ledger-Served-By"] == "replica-1":
            break
        assert time.monotonic() < deadline + 30, answer.text
        time.sleep(0.2)


def test_reads_go_to_the_primary_when_the_standby_stops(
    cluster: Cluster, services: tuple[ServerProcess, ServerProcess], tokens: Tokens
) -> None:
    # given a service reading from the standby
    replicated, _ = services
    company = unique_id()
    position = append(replicated.base_url, tokens, [factories.company_registered(company)])
    served: list[str] = []

    def read() -> None:
        answer = httpx.get(
            f"{replicated.base_url}/companies/{company}",
            params={"min_position": position},
            headers=tokens.header(),
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        served.append(answer.headers["Ledger-Served-By"])

    read()
    assert served == ["replica-1"]
    # when the standby stops while reads go on
    cluster.standby_process.terminate()
    deadline = time.monotonic() + 30
    while cluster.standby_process.poll() is None or len(served) < 50:
        read()
        assert time.monotonic() < deadline
    # then no read failed, and they are answered by the primary
    read()
    assert served[-1] == "primary"
    health = httpx.get(f"{replicated.base_url}/health").json()
    assert health["replicas"]["replica-1"]["state"] == "unreachable"
