"""The verifiable log from the command line: keys, receipts, exports, building and a crash."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from events import tree
from events.merkle import verify_consistency
from events.tree_check import verify_tree
from tests import factories
from tests.support import ServerProcess, client_for, make_tokens, unique_id
from tests.system.test_silent_rewrite import (
    ORIGIN,
    append_events,
    get,
    run_ledger,
    signed_size,
)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def server(db_url: str, data_dir: Path, artifacts: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(
        db_url,
        artifacts / "proof-commands.log",
        env={
            "LEDGER_DATA_DIR": str(data_dir),
            "LEDGER_LOG_ORIGIN": ORIGIN,
            "LEDGER_CHECKPOINT_INTERVAL": "0.05",
        },
    )
    process.start()
    yield process
    if process.process is not None and process.process.poll() is None:
        process.kill()


async def test_keys_receipts_and_exports_check_out_offline(
    db_url: str, server: ServerProcess, data_dir: Path, tmp_path: Path
) -> None:
    tokens = await make_tokens(db_url)
    append_events(server.base_url, tokens, 5)
    await signed_size(server.base_url, tokens, 5)
    env = {"DATABASE_URL": db_url, "LEDGER_DATA_DIR": str(data_dir), "LEDGER_LOG_ORIGIN": ORIGIN}
    # the key printed by the command line is the one the service publishes
    printed = run_ledger("keys", "public", env=env)
    vkey = get(f"{server.base_url}/ledger/public-key").text.strip()
    assert printed.returncode == 0 and printed.stdout.strip() == vkey
    assert "PRIVATE" not in printed.stdout + printed.stderr
    # a receipt verifies offline, and an altered one does not
    events = get(f"{server.base_url}/events?limit=5", tokens.header("read")).json()["events"]
    event_id = events[3]["event_id"]
    receipt = get(f"{server.base_url}/events/{event_id}/receipt", tokens.header("read")).text
    path = tmp_path / "event.tlog-proof"
    path.write_text(receipt)
    checked = run_ledger("verify-receipt", str(path), "--key", vkey)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert event_id in checked.stdout and "position 4" in checked.stdout
    lines = receipt.split("\n")
    lines[3] = base64.b64encode(bytes(32)).decode()  # one proof hash replaced
    path.write_text("\n".join(lines))
    refused = run_ledger("verify-receipt", str(path), "--key", vkey)
    assert refused.returncode == 1 and "NOT valid" in refused.stdout
    # an export with its checkpoint verifies against the signed root, an altered root does not
    export = tmp_path / "ledger.jsonl"
    made = run_ledger("export", "-o", str(export), "--with-checkpoint", env=env)
    assert made.returncode == 0, made.stderr
    verified = run_ledger("verify", "--file", str(export), "--key", vkey)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "root matches the checkpoint" in verified.stdout
    beside = tmp_path / "ledger.jsonl.checkpoint"
    note = beside.read_text().split("\n")
    note[2] = base64.b64encode(bytes(32)).decode()
    beside.write_text("\n".join(note))
    assert run_ledger("verify", "--file", str(export), "--key", vkey).returncode == 1


async def test_migrate_builds_the_tree_of_an_existing_ledger(db_url: str, tmp_path: Path) -> None:
    # given a ledger whose events were appended while no process built the tree
    tokens = await make_tokens(db_url)
    async with client_for(db_url, notary=False, data_dir=tmp_path) as client:
        company = unique_id()
        await client.post(
            "/events", json=factories.company_registered(company), headers=tokens.header("write")
        )
        for i in range(11):
            envelope = factories.valuation_reported(company, value=str(5_000 + i))
            await client.post("/events", json=envelope, headers=tokens.header("write"))
    conn = await asyncpg.connect(db_url)
    try:
        assert await tree.built_size(conn) == 0
    finally:
        await conn.close()
    # when it is migrated, then the tree holds every event and verify says it matches
    migrated = run_ledger("migrate", env={"DATABASE_URL": db_url})
    assert migrated.returncode == 0 and "added 12 events" in migrated.stdout, migrated.stderr
    verified = run_ledger("verify", env={"DATABASE_URL": db_url})
    assert verified.returncode == 0 and "tree intact: 12 events" in verified.stdout


async def test_after_a_kill_the_tree_matches_the_log_and_extends_the_last_checkpoint(
    db_url: str, server: ServerProcess
) -> None:
    tokens = await make_tokens(db_url)
    stop = asyncio.Event()

    async def appender() -> None:
        company = unique_id()
        async with httpx.AsyncClient(
            base_url=server.base_url, headers=tokens.header("write"), timeout=10
        ) as http:
            await http.post("/events", json=factories.company_registered(company))
            while not stop.is_set():
                try:
                    await http.post("/events", json=factories.valuation_reported(company))
                except httpx.HTTPError:
                    return  # the server is gone

    writers = [asyncio.create_task(appender()) for _ in range(4)]
    await signed_size(server.base_url, tokens, 40)
    server.kill()  # kill -9 while the appenders are at it
    stop.set()
    await asyncio.gather(*writers)
    conn = await asyncpg.connect(db_url)
    try:
        before = await tree.latest_checkpoint(conn)
        assert before is not None
        # after a restart, the tree catches up with the log and the next checkpoint extends it
        server.start()
        head = int(await conn.fetchval("SELECT position FROM ledger_head"))
        await signed_size(server.base_url, tokens, head)
        after = await tree.latest_checkpoint(conn)
        assert after is not None and after.tree_size >= head
        report = await verify_tree(conn)
        assert report.intact and report.checked == after.tree_size
        proof = get(
            f"{server.base_url}/ledger/proofs/consistency?from={before.tree_size}"
            f"&to={after.tree_size}",
            tokens.header("read"),
        ).json()
        hashes = [base64.b64decode(h) for h in proof["hashes"]]
        verify_consistency(before.tree_size, after.tree_size, before.root, after.root, hashes)
    finally:
        await conn.close()
