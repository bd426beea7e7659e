"""Concurrent appends against a real server process: gapless order, receipts, conflicts.

Many writers append to a few shared streams at once, some with ``expected_version`` (so many
are refused with 409) and some without, while a reader tails ``GET /events``. The reader must
see every committed event exactly once, in position order, with no gap; every acknowledged
receipt must match what is stored; the log must verify.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import random
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest

from events.chain import format_instant
from tests import factories as f
from tests.support import ServerProcess, Tokens, connected, unique_id

WRITERS = 8
APPENDS_PER_WRITER = 60
COMPANIES = 4
READ_PAGE = 37  # an odd page size, so pages end in the middle of groups


@pytest.fixture
def server(db_url: str, ledger_processes: Callable[..., ServerProcess]) -> ServerProcess:
    """Run ``ledger serve`` on this test's database; it is killed when the test ends."""
    process = ledger_processes(db_url)
    process.start()
    return process


@dataclass
class Attempt:
    """One POST /events a writer made, and what it was answered."""

    envelopes: list[dict[str, Any]]
    is_batch: bool
    expected_version: int | None
    status: int
    body: Any


@dataclass
class Run:
    """What the writers did and what the reader saw."""

    attempts: list[Attempt] = field(default_factory=list)
    seen: list[dict[str, Any]] = field(default_factory=list)
    progress: asyncio.Event = field(default_factory=asyncio.Event)
    writers_done: asyncio.Event = field(default_factory=asyncio.Event)
    seen_before_done: int = 0  # how many events the reader saw while writers still wrote


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


async def _stream_version(client: httpx.AsyncClient, stream: str) -> int:
    """Return the stream's current version as GET /streams/{stream}/events shows it."""
    response = await client.get(f"/streams/{stream}/events")
    assert response.status_code == 200, response.text
    events = response.json()["events"]
    return int(events[-1]["stream_version"]) if events else 0


async def _writer(
    server: ServerProcess, tokens: Tokens, companies: list[str], seed: int, run: Run
) -> None:
    rng = random.Random(seed)
    last_seen: dict[str, int] = {}  # the stream version this writer last saw, per stream
    async with httpx.AsyncClient(
        base_url=server.base_url, headers=tokens.header("all"), timeout=30
    ) as client:
        for i in range(APPENDS_PER_WRITER):
            company = rng.choice(companies)
            stream = f"company:{company}"
            expected: int | None = None
            if i % 10 == 9:  # a batch over two streams, no expected versions
                other = rng.choice([c for c in companies if c != company])
                envelopes = [
                    f.valuation_reported(company, str(rng.randint(1, 10**9))),
                    f.round_announced(other),
                    f.valuation_reported(other, str(rng.randint(1, 10**9))),
                ]
                payload: dict[str, Any] = {"events": envelopes}
                is_batch = True
            else:
                if i % 3 != 2:  # two in three single appends say which version they saw
                    if stream not in last_seen or rng.random() < 0.3:
                        last_seen[stream] = await _stream_version(client, stream)
                    expected = last_seen[stream]
                    envelope = f.valuation_reported(
                        company, str(rng.randint(1, 10**9)), expected_version=expected
                    )
                else:
                    envelope = f.valuation_reported(company, str(rng.randint(1, 10**9)))
                envelopes, payload, is_batch = [envelope], envelope, False
            response = await client.post("/events", json=payload)
            body = _body(response)
            run.attempts.append(Attempt(envelopes, is_batch, expected, response.status_code, body))
            if response.status_code == 201:
                receipts = body["receipts"] if is_batch else [body]
                for receipt in receipts:
                    last_seen[receipt["stream"]] = receipt["stream_version"]
                run.progress.set()
            elif response.status_code == 409 and isinstance(body, dict):
                if "current_version" in body:
                    last_seen[stream] = body["current_version"]
                else:  # recorded and reported below; read the stream to keep going
                    last_seen[stream] = await _stream_version(client, stream)


async def _reader(server: ServerProcess, tokens: Tokens, run: Run) -> None:
    """Tail GET /events from position 0 until the writers are done and the head is reached."""
    after = 0
    async with httpx.AsyncClient(
        base_url=server.base_url, headers=tokens.header("all"), timeout=30
    ) as client:
        while True:
            run.progress.clear()
            done = run.writers_done.is_set()
            response = await client.get("/events", params={"after": after, "limit": READ_PAGE})
            assert response.status_code == 200, response.text
            page = response.json()
            run.seen.extend(page["events"])
            if not done:
                run.seen_before_done = len(run.seen)
            if page["events"]:
                after = page["events"][-1]["position"]
                continue
            if done:  # every write was answered before this empty page was read
                return
            await run.progress.wait()  # a writer was acknowledged, or all of them finished


async def _stored(db_url: str) -> list[asyncpg.Record]:
    async with connected(db_url) as conn:
        return await conn.fetch(
            """SELECT position, event_id, stream, stream_version, type, recorded_at,
                      data::text AS data, hash
               FROM events ORDER BY position"""
        )


@pytest.fixture
def second_server(db_url: str, ledger_processes: Callable[..., ServerProcess]) -> ServerProcess:
    """Run another ``ledger serve`` on the same database (the README says they may share it)."""
    process = ledger_processes(db_url)
    process.start()
    return process


@pytest.mark.parametrize("processes", [1, 2])
async def test_concurrent_writers_and_a_tailing_reader_agree_on_a_gapless_log(
    server: ServerProcess,
    db_url: str,
    tokens: Tokens,
    processes: int,
    request: pytest.FixtureRequest,
) -> None:
    # given: one server process, or two sharing the database; writers alternate between them
    servers = [server]
    if processes == 2:
        servers.append(request.getfixturevalue("second_server"))
    # and: four companies that every writer appends to
    companies = [unique_id() for _ in range(COMPANIES)]
    async with httpx.AsyncClient(
        base_url=server.base_url, headers=tokens.header("all"), timeout=30
    ) as client:
        setup_receipts = []
        for company in companies:
            response = await client.post(
                "/events", json=f.company_registered(company, expected_version=0)
            )
            assert response.status_code == 201, response.text
            setup_receipts.append(response.json())
    run = Run()

    # when: eight writers race on the shared streams while one reader tails the log
    reader = asyncio.create_task(_reader(server, tokens, run))
    writers = [
        asyncio.create_task(_writer(servers[seed % processes], tokens, companies, seed, run))
        for seed in range(WRITERS)
    ]
    try:
        await asyncio.wait_for(asyncio.gather(*writers), timeout=90)
    finally:
        run.writers_done.set()
        run.progress.set()
    await asyncio.wait_for(reader, timeout=30)

    # then: every request was answered 201 or 409, never 5xx or anything else
    statuses = defaultdict(int)
    for attempt in run.attempts:
        statuses[attempt.status] += 1
    assert set(statuses) <= {201, 409}, (
        dict(statuses),
        [(a.status, a.body) for a in run.attempts if a.status not in (201, 409)][:5],
    )
    assert len(run.attempts) == WRITERS * APPENDS_PER_WRITER
    assert statuses[201] > 0
    assert statuses[409] > 0, "the writers never conflicted: the test did not race"

    # and: each conflict carries the stream's current version, and changed nothing
    stored = await _stored(db_url)
    by_id = {row["event_id"]: row for row in stored}
    for attempt in (a for a in run.attempts if a.status == 409):
        assert isinstance(attempt.body, dict), attempt.body
        assert attempt.body["status"] == 409
        assert isinstance(attempt.body.get("current_version"), int), attempt.body
        assert attempt.body["current_version"] != attempt.expected_version, attempt.body
        for envelope in attempt.envelopes:
            assert uuid.UUID(envelope["event_id"]) not in by_id, "a refused append was stored"

    # and: every acknowledged receipt is stored exactly as the receipt says
    acknowledged = list(setup_receipts)
    for attempt in (a for a in run.attempts if a.status == 201):
        receipts = attempt.body["receipts"] if attempt.is_batch else [attempt.body]
        assert [r["event_id"] for r in receipts] == [e["event_id"] for e in attempt.envelopes]
        acknowledged.extend(receipts)
    for receipt in acknowledged:
        row = by_id.get(uuid.UUID(receipt["event_id"]))
        assert row is not None, f"acknowledged {receipt['event_id']} is not stored"
        assert (row["position"], bytes(row["hash"]).hex()) == (receipt["position"], receipt["hash"])
        assert (row["stream"], row["stream_version"]) == (
            receipt["stream"],
            receipt["stream_version"],
        )
        assert format_instant(row["recorded_at"]) == receipt["recorded_at"]
    assert len(stored) == len(acknowledged), "the log holds events nobody was told about"

    # and: positions are 1..N, and recorded_at never goes back as position goes forward
    assert [row["position"] for row in stored] == list(range(1, len(stored) + 1))
    recorded = [row["recorded_at"] for row in stored]
    assert all(a <= b for a, b in itertools.pairwise(recorded))

    # and: the reader saw every committed event exactly once, in order, with no gap
    assert [e["position"] for e in run.seen] == list(range(1, len(stored) + 1))
    assert [e["event_id"] for e in run.seen] == [str(row["event_id"]) for row in stored]
    assert [e["hash"] for e in run.seen] == [bytes(row["hash"]).hex() for row in stored]
    seen_times = [dt.datetime.fromisoformat(e["recorded_at"]) for e in run.seen]
    assert all(a <= b for a, b in itertools.pairwise(seen_times))

    assert run.seen_before_done > 0, "the reader did not tail the log while it was written"

    # and: each stream's versions are 1..k without gaps, also as GET /streams shows them
    versions: dict[str, list[int]] = defaultdict(list)
    for row in stored:
        versions[row["stream"]].append(row["stream_version"])
    assert set(versions) == {f"company:{c}" for c in companies}
    async with httpx.AsyncClient(
        base_url=server.base_url, headers=tokens.header("all"), timeout=30
    ) as client:
        for stream, numbers in versions.items():
            assert numbers == list(range(1, len(numbers) + 1)), stream
            shown = (await client.get(f"/streams/{stream}/events")).json()["events"]
            assert [e["stream_version"] for e in shown] == numbers

        # and: the chain verifies and the digest is the last event's
        verify = await client.get("/ledger/verify")
        assert verify.status_code == 200, verify.text
        report = verify.json()
        assert report["intact"] is True, report
        assert report["checked"] == len(stored)
        digest = (await client.get("/ledger/digest")).json()
        assert (digest["position"], digest["hash"]) == (
            stored[-1]["position"],
            bytes(stored[-1]["hash"]).hex(),
        )


@pytest.mark.parametrize("shape", ["single", "batch"])
async def test_the_same_envelope_posted_concurrently_is_stored_once(
    server: ServerProcess, db_url: str, tokens: Tokens, shape: str
) -> None:
    # given: one envelope (or batch) with client-chosen event ids, and 20 clients
    company = unique_id()
    if shape == "single":
        payload: dict[str, Any] = f.company_registered(company)
        ids = [payload["event_id"]]
    else:
        payload = {"events": [f.company_registered(company), f.valuation_reported(company)]}
        ids = [e["event_id"] for e in payload["events"]]
    clients = [
        httpx.AsyncClient(base_url=server.base_url, headers=tokens.header("write"), timeout=30)
        for _ in range(20)
    ]
    try:
        # when: all of them post it at once
        responses = await asyncio.wait_for(
            asyncio.gather(*(c.post("/events", json=payload) for c in clients)), timeout=60
        )
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))

    # then: one 201, the rest 200, all with the identical receipt
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 19 + [201], [r.text for r in responses if r.status_code >= 300]
    bodies = [r.json() for r in responses]
    assert all(body == bodies[0] for body in bodies)
    receipts = bodies[0]["receipts"] if shape == "batch" else [bodies[0]]
    assert [r["event_id"] for r in receipts] == ids

    # and: each event is stored once, where its receipt says
    stored = await _stored(db_url)
    assert [str(row["event_id"]) for row in stored] == ids
    assert [(row["position"], bytes(row["hash"]).hex()) for row in stored] == [
        (r["position"], r["hash"]) for r in receipts
    ]
