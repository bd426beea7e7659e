"""The verifiable log's costs: appends with the tree on and off, proofs, building, verified answers.

    python benchmarks/bench_proofs.py [--events 1000000] [--seconds 10] [--connections 16]

Cases (benchmarks/README.md has the figures):

  (a) POST /events, single envelopes and batches of 100, from --connections clients, against
      `ledger serve` with the notary on (tree built and checkpoints signed every second) and off
  (b) inclusion and consistency proofs at --events events: p50/p99 over HTTP from 16
      connections, against reading the same node rows with asyncpg
  (c) building the tree of an existing --events-event log (`ledger migrate`'s work): events/s
  (d) GET /companies/{id} with proof=true against the plain answer: p99 and size

The large log is written straight into the events table (synthetic payloads; the hash chain
is not what is measured here). A script that prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import database as db
from harness.processes import ledger_server
from harness.report import fmt, percentiles

from events import merkle, tree
from events.log import head_position
from tests import factories

BATCH = 100


async def _appends(base: str, token: str, seconds: float, connections: int, batch: bool) -> float:
    """Append for ``seconds`` from ``connections`` clients; return events per second."""
    done = 0
    deadline = time.monotonic() + seconds

    async def client() -> None:
        nonlocal done
        company = f"bench-{uuid.uuid4().hex[:10]}"
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {token}"}
        ) as http:
            await http.post("/events", json=factories.company_registered(company))
            while time.monotonic() < deadline:
                if batch:
                    body: Any = {
                        "events": [factories.valuation_reported(company) for _ in range(BATCH)]
                    }
                else:
                    body = factories.valuation_reported(company)
                answer = await http.post("/events", json=body)
                if answer.status_code == 201:
                    done += BATCH if batch else 1

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(connections)))
    return done / (time.monotonic() - started)


def case_a(url: str, token: str, args: argparse.Namespace, logs: Path) -> None:
    print("(a) appends, events/s (notary on vs off)")
    for notary in ("off", "on", "off", "on"):
        server = ledger_server(url, logs / f"a-{notary}.log", LEDGER_NOTARY=notary,
                               LEDGER_DATA_DIR=str(logs))  # fmt: skip
        server.start()
        try:
            single = asyncio.run(
                _appends(server.base_url, token, args.seconds, args.connections, False)
            )
            batched = asyncio.run(_appends(server.base_url, token, args.seconds, 4, True))
        finally:
            server.stop()
        print(f"    notary {notary:3}: single {fmt(single)}  batches of {BATCH}: {fmt(batched)}")


async def _fill(url: str, count: int) -> float:
    """Write ``count`` synthetic events straight into the log; then build the tree (case c)."""
    async with db.connected(url) as conn:
        have = await head_position(conn)
        if have < count:
            await conn.execute(
                """INSERT INTO events (position, event_id, stream, stream_version, type,
                       effective_date, recorded_at, source, data, hash)
                   SELECT p, gen_random_uuid(), 'company:bulk-' || (p % 1000), p / 1000 + 1,
                          'valuation_reported', '2023-01-01', now(), '{"name":"bench"}',
                          ('{"company_id":"bulk-' || (p % 1000)
                           || '","valuation":{"currency":"USD","value":"' || p || '"}}')::json,
                          decode(repeat('00', 32), 'hex')
                   FROM generate_series($1::bigint, $2::bigint) AS p""",
                have + 1,
                count,
            )
            await conn.execute("UPDATE ledger_head SET position = $1, recorded_at = now()", count)
        border = await tree.load_border(conn)
        started = time.monotonic()
        added = await tree.extend(conn, border, count)
        return added / (time.monotonic() - started) if added else 0.0


async def _latency(base: str, token: str, paths: list[str], connections: int) -> tuple[Any, Any]:
    latencies: list[float] = []
    queue = list(paths)

    async def client() -> None:
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {token}"}
        ) as http:
            while queue:
                path = queue.pop()
                began = time.perf_counter()
                answer = await http.get(path)
                latencies.append(time.perf_counter() - began)
                answer.raise_for_status()

    await asyncio.gather(*(client() for _ in range(connections)))
    return percentiles(latencies)


async def _raw_nodes(url: str, size: int, requests: int) -> tuple[Any, Any]:
    latencies: list[float] = []
    async with db.connected(url) as conn:
        for _ in range(requests):
            index = random.randrange(size)
            wanted = merkle.nodes_of(merkle.inclusion_ranges(index, size)) | {(0, index)}
            began = time.perf_counter()
            await tree.read_nodes(conn, wanted)
            latencies.append(time.perf_counter() - began)
    return percentiles(latencies)


def case_bcd(url: str, token: str, args: argparse.Namespace, logs: Path) -> None:
    rate = asyncio.run(_fill(url, args.events))
    print(f"(c) tree built for {args.events:,} events: {fmt(rate)} events/s")
    server = ledger_server(url, logs / "b.log", LEDGER_DATA_DIR=str(logs))
    server.start()
    try:
        base, size = server.base_url, args.events
        headers = {"Authorization": f"Bearer {token}"}
        deadline = time.monotonic() + 60
        while httpx.get(f"{base}/ledger/checkpoint", headers=headers).status_code != 200:
            assert time.monotonic() < deadline, "no checkpoint"
            time.sleep(0.1)
        n = args.requests
        inclusion = [
            f"/ledger/proofs/inclusion?position={random.randrange(1, size)}&tree_size={size}"
            for _ in range(n)
        ]
        consistency = [
            f"/ledger/proofs/consistency?from={random.randrange(1, size)}&to={size}"
            for _ in range(n)
        ]
        for name, paths in (("inclusion", inclusion), ("consistency", consistency)):
            p50, p99 = asyncio.run(_latency(base, token, paths, 16))
            print(
                f"(b) {name} proofs over HTTP, 16 connections: "
                f"p50 {fmt(p50, 2)} ms, p99 {fmt(p99, 2)} ms"
            )
        p50, p99 = asyncio.run(_raw_nodes(url, size, n))
        print(f"(b) the same node rows with asyncpg: p50 {fmt(p50, 2)} ms, p99 {fmt(p99, 2)} ms")
        _case_d(base, token, headers)
    finally:
        server.stop()


def _case_d(base: str, token: str, headers: dict[str, str]) -> None:
    company = f"bench-{uuid.uuid4().hex[:10]}"
    with httpx.Client(base_url=base, headers=headers) as http:
        http.post("/events", json=factories.company_registered(company)).raise_for_status()
        http.post("/events", json=factories.round_announced(company)).raise_for_status()
        for i in range(30):
            http.post("/events", json=factories.valuation_reported(company, value=str(10**9 + i)))
        position = http.get(f"/companies/{company}").json()["position"]
        while int(http.get("/ledger/checkpoint").text.split("\n")[1]) < position:
            time.sleep(0.1)
        for label, query in (("plain", ""), ("proof=true", "?proof=true")):
            paths = [f"/companies/{company}{query}"] * 300
            p50, p99 = asyncio.run(_latency(base, token, paths, 16))
            size = len(http.get(paths[0]).content)
            print(
                f"(d) company answer {label:10}: p50 {fmt(p50, 2)} ms, p99 {fmt(p99, 2)} ms, "
                f"{size:,} bytes"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--skip-appends", action="store_true")
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    database = db.Database()
    database.start()
    logs = Path(tempfile.mkdtemp(prefix="ledger-bench-proofs-"))
    try:
        asyncio.run(db.migrate(database.url))
        token = asyncio.run(db.create_token(database.url, "bench", ["admin"]))
        if not args.skip_appends:
            case_a(database.url, token, args, logs)
    finally:
        database.close()
    large = db.Database()  # a log of its own, built from empty
    large.start()
    try:
        asyncio.run(db.migrate(large.url))
        token = asyncio.run(db.create_token(large.url, "bench", ["admin"]))
        case_bcd(large.url, token, args, logs)
    finally:
        large.close()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
