"""Two ``ledger serve`` and two ``ledger worker`` processes against one PostgreSQL.

Writers append through both servers at once to overlapping streams, some with
``expected_version`` (many refused with 409), some retrying the same request (idempotent), while
a webhook endpoint takes every event. Afterwards: positions are gapless and in commit order,
no event is stored twice, every acknowledged receipt matches what is stored, the hash chain is
intact, the read models equal a rebuild from scratch, and every event reached the webhook.
"""

from __future__ import annotations

import asyncio
import collections
import random
from collections.abc import Callable
from typing import Any

import httpx

from events.integrity import verify_store
from tests import factories
from tests.receiver import Receiver
from tests.support import (
    ServerProcess,
    caught_up,
    connected,
    make_tokens,
    read_models,
    rebuild,
    unique_id,
    wait_for,
)

WRITERS = 8
REQUESTS_PER_WRITER = 25
COMPANIES = 3
ENV = {"LEDGER_WEBHOOK_ALLOW_PRIVATE": "1", "LEDGER_WEBHOOK_TIMEOUT": "10"}


async def test_two_servers_and_two_workers_share_one_database(
    db_url: str, ledger_processes: Callable[..., ServerProcess]
) -> None:
    tokens = await make_tokens(db_url)
    processes = [
        ledger_processes(db_url, command, **ENV)
        for command in ["serve", "serve", "worker", "worker"]
    ]
    companies = [unique_id() for _ in range(COMPANIES)]
    acknowledged: dict[str, dict[str, Any]] = {}  # event_id -> receipt
    unexpected: list[str] = []
    try:
        with Receiver().running() as receiver:
            for process in processes:
                process.start()
            servers = [p for p in processes if p.command == "serve"]
            async with (
                httpx.AsyncClient(base_url=servers[0].base_url, timeout=30) as first,
                httpx.AsyncClient(base_url=servers[1].base_url, timeout=30) as second,
            ):
                hook = await first.post(
                    "/webhooks", json={"url": receiver.url}, headers=tokens.header()
                )
                assert hook.status_code == 201
                for company in companies:
                    answer = await second.post(
                        "/events",
                        json=factories.company_registered(company),
                        headers=tokens.header(),
                    )
                    acknowledged[answer.json()["event_id"]] = answer.json()

                async def writer(n: int) -> None:
                    rng = random.Random(n)
                    for _ in range(REQUESTS_PER_WRITER):
                        http = rng.choice([first, second])
                        company = rng.choice(companies)
                        envelope = factories.valuation_reported(
                            company, value=str(rng.randint(10**6, 10**9))
                        )
                        if rng.random() < 0.3:  # optimistic concurrency on a shared stream
                            stream = await http.get(
                                f"/streams/company:{company}/events?limit=1000",
                                headers=tokens.header(),
                            )
                            envelope["expected_version"] = len(stream.json()["events"])
                        body: Any = envelope
                        if rng.random() < 0.3:
                            body = {"events": [envelope, factories.valuation_reported(company)]}
                            body["events"][0].pop("expected_version", None)
                        tries = 2 if rng.random() < 0.3 else 1  # the same request again
                        for attempt in range(tries):
                            target = http if attempt == 0 else rng.choice([first, second])
                            answer = await target.post(
                                "/events", json=body, headers=tokens.header()
                            )
                            if answer.status_code in (200, 201):
                                receipts = answer.json().get("receipts") or [answer.json()]
                                for receipt in receipts:
                                    acknowledged[receipt["event_id"]] = receipt
                                if attempt and answer.status_code != 200:
                                    unexpected.append("a retry was appended again")
                            elif answer.status_code == 409 and "expected_version" in envelope:
                                pass  # another writer got there first
                            else:
                                unexpected.append(f"{answer.status_code} {answer.text[:200]}")

                await asyncio.gather(*(writer(n) for n in range(WRITERS)))

                async def read_models_caught_up() -> bool:
                    return await caught_up(db_url)

                await wait_for(read_models_caught_up, within=30)

                async def all_delivered() -> bool:
                    return set(receiver.ids()) >= set(acknowledged)

                await wait_for(all_delivered, within=60)
                kept = await read_models(db_url)
    finally:
        for process in processes:
            if process.is_running():
                process.terminate()

    assert unexpected == []
    async with connected(db_url) as conn:
        rows = await conn.fetch("SELECT event_id, position, hash FROM events ORDER BY position")
        report = await verify_store(conn)
        per_stream = await conn.fetch(
            """SELECT stream, array_agg(stream_version ORDER BY position) AS versions
               FROM events GROUP BY stream"""
        )
    positions = [row["position"] for row in rows]
    assert positions == list(range(1, len(rows) + 1))  # gapless
    assert len({row["event_id"] for row in rows}) == len(rows)  # none stored twice
    stored = {str(row["event_id"]): row for row in rows}
    for event_id, receipt in acknowledged.items():
        assert stored[event_id]["position"] == receipt["position"]
        assert bytes(stored[event_id]["hash"]).hex() == receipt["hash"]
    for stream in per_stream:  # stream versions follow commit order within each stream
        assert stream["versions"] == list(range(1, len(stream["versions"]) + 1))
    assert report.intact and report.checked == len(rows)
    await rebuild(db_url)
    assert await read_models(db_url) == kept
    arrivals = collections.Counter(receiver.ids())
    assert set(arrivals) == set(stored)
    assert set(arrivals.values()) == {1}  # four dispatchers, and no message sent twice
