"""The hash chain: the digest is the head, and rewriting stored history is detected.

The append-only trigger refuses changes to the log, but a database superuser can switch it
off. These tests do exactly that, change or remove stored rows, and check that both
``GET /ledger/verify`` and ``ledger verify`` name the first position that no longer matches.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import asyncpg
import msgspec

from events.decoding import decode_append_body
from events.integrity import verify_store
from events.records import prepare
from events.writer import GroupCommitter
from tests import factories as f
from tests.support import Tokens, append, client_for, connected, unique_id, wait_for


async def _append_log(client: Any, tokens: Tokens, company: str) -> list[dict[str, Any]]:
    """Append six events (singles and a batch) and return their receipts in position order."""
    receipts: list[dict[str, Any]] = []
    singles = [
        f.company_registered(company),
        f.valuation_reported(company, "500000000"),
        f.round_announced(company),
    ]
    for envelope in singles:
        receipts.append(await append(client, tokens, envelope))
    batch = {
        "events": [
            f.valuation_reported(company, "750000000"),
            f.export_rule(unique_id("rule")),
            f.valuation_reported(company, "900000000"),
        ]
    }
    receipts.extend((await append(client, tokens, batch))["receipts"])
    assert [r["position"] for r in receipts] == list(range(1, 7))
    return receipts


async def _tamper(db_url: str, statement: str, *args: Any) -> str:
    """Run ``statement`` on the log with the append-only trigger switched off, as superuser."""
    async with connected(db_url) as conn:
        async with conn.transaction():
            await conn.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
            status = await conn.execute(statement, *args)
            await conn.execute("ALTER TABLE events ENABLE ALWAYS TRIGGER events_append_only")
        return status


async def _verify(client: Any, tokens: Tokens) -> dict[str, Any]:
    response = await client.get("/ledger/verify", headers=tokens.header("admin"))
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


async def _cli_verify(db_url: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.cli",
        "verify",
        env={**os.environ, "DATABASE_URL": db_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, stdout.decode() + stderr.decode()


async def test_digest_is_the_last_receipt_and_an_untouched_log_verifies(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        # given
        receipts = await _append_log(client, tokens, unique_id())
        # when
        digest = await client.get("/ledger/digest", headers=tokens.header("admin"))
        report = await _verify(client, tokens)
        # then
        assert digest.status_code == 200, digest.text
        last = receipts[-1]
        shown = digest.json()
        assert (shown["position"], shown["hash"]) == (last["position"], last["hash"])
        assert report["intact"] is True, report
        assert (report["checked"], report["head_position"], report["head_hash"]) == (
            6,
            6,
            last["hash"],
        )
        assert report.get("first_bad_position") is None
    code, output = await _cli_verify(db_url)
    assert code == 0, output
    assert "intact" in output and last["hash"] in output


async def test_integrity_endpoints_need_the_admin_scope(db_url: str, tokens: Tokens) -> None:
    async with client_for(db_url) as client:
        for path in ["/ledger/digest", "/ledger/verify"]:
            assert (await client.get(path)).status_code == 401
            assert (await client.get(path, headers=tokens.header("read"))).status_code == 403
            assert (await client.get(path, headers=tokens.header("admin"))).status_code == 200


async def test_an_empty_log_verifies(db_url: str, tokens: Tokens) -> None:
    async with client_for(db_url) as client:
        report = await _verify(client, tokens)
        digest = (await client.get("/ledger/digest", headers=tokens.header("admin"))).json()
    assert report["intact"] is True, report
    assert report["checked"] == 0
    assert (digest["position"], digest["hash"]) == (0, "00" * 32)


async def test_changed_data_is_reported_at_its_position(db_url: str, tokens: Tokens) -> None:
    async with client_for(db_url) as client:
        # given: a log whose valuation at position 2 is then rewritten behind the trigger's back
        receipts = await _append_log(client, tokens, unique_id())
        status = await _tamper(
            db_url,
            """UPDATE events SET data = replace(data::text, '"500000000"', '"5000000000"')::json
               WHERE position = $1""",
            2,
        )
        assert status == "UPDATE 1"
        path = f"/events/{receipts[1]['event_id']}"
        shown = await client.get(path, headers=tokens.header("read"))
        assert shown.json()["data"]["valuation"]["value"] == "5000000000"  # the change is live
        # when
        report = await _verify(client, tokens)
    # then
    assert report["intact"] is False, report
    assert report["first_bad_position"] == 2, report
    assert report["checked"] == 1
    # the report's head is the last position that still matches
    assert (report["head_position"], report["head_hash"]) == (1, receipts[0]["hash"])
    code, output = await _cli_verify(db_url)
    assert code != 0, output
    assert "position 2" in output, output


async def test_changed_recorded_at_is_reported_at_its_position(db_url: str, tokens: Tokens) -> None:
    async with client_for(db_url) as client:
        # given: the transaction time of position 5 is moved back by a day
        await _append_log(client, tokens, unique_id())
        await _tamper(
            db_url,
            "UPDATE events SET recorded_at = recorded_at - interval '1 day' WHERE position = $1",
            5,
        )
        # when
        report = await _verify(client, tokens)
    # then
    assert report["intact"] is False, report
    assert report["first_bad_position"] == 5, report


async def test_a_deleted_last_event_is_detected(db_url: str, tokens: Tokens) -> None:
    async with client_for(db_url) as client:
        # given: the newest event is deleted; the chain up to it still links up
        receipts = await _append_log(client, tokens, unique_id())
        status = await _tamper(db_url, "DELETE FROM events WHERE position = $1", 6)
        assert status == "DELETE 1"
        # when
        report = await _verify(client, tokens)
        digest = (await client.get("/ledger/digest", headers=tokens.header("admin"))).json()
    # then: the head still records position 6, which the log no longer reaches
    assert (digest["position"], digest["hash"]) == (6, receipts[-1]["hash"])
    assert report["intact"] is False, report
    assert report["first_bad_position"] == 6, report
    assert report["checked"] == 5
    code, output = await _cli_verify(db_url)
    assert code != 0, output
    assert "position 6" in output, output


async def test_the_first_of_several_deleted_last_events_is_reported(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        await _append_log(client, tokens, unique_id())
        await _tamper(db_url, "DELETE FROM events WHERE position >= $1", 5)
        report = await _verify(client, tokens)
    assert (report["intact"], report["first_bad_position"], report["checked"]) == (False, 5, 4)


async def test_verification_while_events_are_appended_is_intact(db_url: str) -> None:
    # given a writer appending continuously
    pool = await asyncpg.create_pool(db_url, min_size=3, max_size=5)
    assert pool is not None
    committer = GroupCommitter(pool)
    committer.start()
    stop = asyncio.Event()

    async def keep_appending() -> None:
        company = unique_id()
        while not stop.is_set():
            envelopes, is_batch = decode_append_body(
                msgspec.json.encode(f.valuation_reported(company))
            )
            await committer.append(prepare(envelopes, is_batch))

    appending = asyncio.create_task(keep_appending())
    try:
        # when the log is verified several times meanwhile
        reports = []
        async with pool.acquire() as conn:
            for _ in range(5):
                target = committer.groups_committed + 3

                async def appended(target: int = target) -> bool:
                    return committer.groups_committed >= target

                await wait_for(appended)
                reports.append(await verify_store(conn, chunk=50))
    finally:
        stop.set()
        await appending
        await committer.stop()
        await pool.close()
    # then every verification covers the head it started from, and finds it intact
    assert all(r.intact for r in reports), reports
    assert reports[-1].checked > reports[0].checked


async def test_a_deleted_event_in_the_middle_is_reported_at_its_position(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        # given: the event at position 3 is deleted, leaving a gap
        receipts = await _append_log(client, tokens, unique_id())
        await _tamper(db_url, "DELETE FROM events WHERE position = $1", 3)
        # when
        report = await _verify(client, tokens)
    # then: the first position whose stored content no longer matches is the missing one, and
    # the report's head is the last position that still verifies (2, with its hash).
    assert report["intact"] is False, report
    assert report["checked"] == 2
    assert report["head_hash"] == receipts[1]["hash"]
    assert (report["first_bad_position"], report["head_position"]) == (3, 2), report
