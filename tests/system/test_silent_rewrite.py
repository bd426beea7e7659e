"""The party the proofs guard against: whoever runs the database, rewriting history quietly.

As the PostgreSQL superuser the test changes an old event and recomputes every later hash and
every node of the tree, so that the hash chain and the stored tree verify again. The signed
checkpoints a monitor kept still catch it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from events import tree
from events.chain import GENESIS, chain
from events.leaves import stored_bytes
from events.log import stored_rows
from events.merkle import Border
from events.notes import Verifier, signed_checkpoint
from tests import factories
from tests.support import ServerProcess, Tokens, make_tokens, unique_id, wait_for

ORIGIN = "ledger.test/log"


@pytest.fixture
def server(db_url: str, tmp_path: Path, artifacts: Path) -> Iterator[ServerProcess]:
    """A ``ledger serve`` that signs every 50 ms with a key of this test's own."""
    process = ServerProcess(
        db_url,
        artifacts / "silent-rewrite.log",
        env={
            "LEDGER_DATA_DIR": str(tmp_path / "data"),
            "LEDGER_LOG_ORIGIN": ORIGIN,
            "LEDGER_CHECKPOINT_INTERVAL": "0.05",
        },
    )
    process.start()
    yield process
    if process.process is not None and process.process.poll() is None:
        process.kill()


def run_ledger(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a ``ledger`` command, returning its outcome."""
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def get(url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """GET from a server process (blocking: these tests drive processes, not the loop)."""
    return httpx.get(url, headers=headers, timeout=10)


def append_events(base: str, tokens: Tokens, count: int) -> None:
    company = unique_id()
    with httpx.Client(base_url=base, headers=tokens.header("write"), timeout=30) as http:
        http.post("/events", json=factories.company_registered(company)).raise_for_status()
        for i in range(count - 1):
            envelope = factories.valuation_reported(company, value=str(1_000_000 + i))
            http.post("/events", json=envelope).raise_for_status()


async def signed_size(base: str, tokens: Tokens, size: int) -> None:
    async def reached() -> bool:
        async with httpx.AsyncClient(base_url=base, headers=tokens.header("read")) as http:
            answer = await http.get("/ledger/checkpoint")
        if answer.status_code != 200:
            return False
        return int(answer.text.split("\n")[1]) >= size

    await wait_for(reached, within=20)


async def rewrite(url: str, position: int, *, delete_checkpoints: bool) -> None:
    """As the superuser: change an event, recompute every later hash and the whole tree."""
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
            await conn.execute("ALTER TABLE merkle_nodes DISABLE TRIGGER merkle_nodes_append_only")
            await conn.execute(
                "UPDATE events SET data = replace(data::text, '100000', '900000')::json"
                " WHERE position = $1",
                position,
            )
            previous, head = GENESIS, 0
            async for rows in stored_rows(conn, 1_000_000, 1000):
                for row in rows:
                    digest = chain(previous, stored_bytes(row))
                    await conn.execute(
                        "UPDATE events SET hash = $1 WHERE position = $2", digest, row.position
                    )
                    previous, head = digest, row.position
            guard = "ledger_head_moves_forward"
            await conn.execute(f"ALTER TABLE ledger_head DISABLE TRIGGER {guard}")
            await conn.execute("UPDATE ledger_head SET hash = $1", previous)
            await conn.execute(f"ALTER TABLE ledger_head ENABLE ALWAYS TRIGGER {guard}")
            await conn.execute("DELETE FROM merkle_nodes")
            await tree.extend(conn, Border(), head)
            if delete_checkpoints:
                trigger = "signed_checkpoints_append_only"
                await conn.execute(f"ALTER TABLE signed_checkpoints DISABLE TRIGGER {trigger}")
                await conn.execute("DELETE FROM signed_checkpoints")
                await conn.execute(
                    f"ALTER TABLE signed_checkpoints ENABLE ALWAYS TRIGGER {trigger}"
                )
            await conn.execute(
                "ALTER TABLE merkle_nodes ENABLE ALWAYS TRIGGER merkle_nodes_append_only"
            )
            await conn.execute("ALTER TABLE events ENABLE ALWAYS TRIGGER events_append_only")
    finally:
        await conn.close()


def monitor(base: str, vkey: str, state: Path, tokens: Tokens) -> subprocess.CompletedProcess[str]:
    return run_ledger(
        "monitor", "--url", base, "--key", vkey, "--state", str(state),
        env={"LEDGER_TOKEN": tokens.read},
    )  # fmt: skip


async def test_a_rewrite_under_a_running_service_stops_signing_and_the_monitor_fails(
    db_url: str, server: ServerProcess, tmp_path: Path
) -> None:
    tokens = await make_tokens(db_url)
    base = server.base_url
    vkey = get(f"{base}/ledger/public-key").text.strip()
    state = tmp_path / "monitor-state"
    # given a ledger of 6 events whose checkpoint a monitor saw
    append_events(base, tokens, 6)
    await signed_size(base, tokens, 6)
    seen = monitor(base, vkey, state, tokens)
    assert seen.returncode == 0, seen.stdout + seen.stderr
    kept = state.read_text()
    # when the superuser rewrites event 2 and everything after it, then one more is appended
    await rewrite(db_url, 2, delete_checkpoints=False)
    append_events(base, tokens, 1)

    # then the service stops signing and says why on /health
    async def forked() -> bool:
        return get(f"{base}/health").json().get("status") == "forked"

    await wait_for(forked, within=20)
    health = get(f"{base}/health")
    assert health.status_code == 503
    assert "no longer extends" in health.json()["signing"]["fork"]
    # and the monitor fails, naming the checkpoint it kept
    after = monitor(base, vkey, state, tokens)
    assert after.returncode == 1, after.stdout + after.stderr
    assert "stopped signing" in after.stdout and kept in after.stdout
    # and verify reports the signed checkpoint the stored log no longer extends
    verified = run_ledger("verify", env={"DATABASE_URL": db_url})
    assert verified.returncode == 1, verified.stdout + verified.stderr
    assert "FORK" in verified.stdout and kept.split("\n\n")[0] in verified.stdout


async def test_a_rewrite_that_deletes_the_checkpoints_is_caught_by_the_monitor_alone(
    db_url: str, server: ServerProcess, tmp_path: Path
) -> None:
    tokens = await make_tokens(db_url)
    base = server.base_url
    vkey = get(f"{base}/ledger/public-key").text.strip()
    state = tmp_path / "monitor-state"
    append_events(base, tokens, 6)
    await signed_size(base, tokens, 6)
    assert monitor(base, vkey, state, tokens).returncode == 0
    kept = state.read_text()
    # when the service is stopped, history rewritten, the checkpoints deleted, and it restarts
    server.kill()
    await rewrite(db_url, 3, delete_checkpoints=True)
    server.start()
    append_events(server.base_url, tokens, 1)
    await signed_size(server.base_url, tokens, 7)
    # then the service signs the rewritten log, but the monitor cannot be shown it extends
    # the checkpoint it kept, and prints both
    after = monitor(server.base_url, vkey, state, tokens)
    assert after.returncode == 1, after.stdout + after.stderr
    now = get(f"{server.base_url}/ledger/checkpoint", tokens.header("read")).text
    assert kept in after.stdout and now in after.stdout
    assert signed_checkpoint(now, Verifier.parse(vkey)).size == 7
    assert state.read_text() == kept  # the monitor keeps what it trusted
