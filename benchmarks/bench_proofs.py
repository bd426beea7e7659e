"""The verifiable log's costs: appends with the tree on and off, proofs, building, verified answers.

    python benchmarks/bench_proofs.py [--events 1000000] [--seconds 10] [--connections 16]
                                      [--rounds 3] [--py-spy FILE]

Cases (benchmarks/README.md has the figures):

  (a) POST /events, single envelopes from --connections wrk connections and batches of 100
      from 4, against `ledger serve` with the notary on (tree built and checkpoints signed every
      second) and off: after an unmeasured warm-up, --rounds rounds alternate off and on, and
      the medians of events/s and of CPU µs per event (the server's and PostgreSQL's) are
      compared
  (b) inclusion and consistency proofs at --events events: p50/p99 over HTTP from 16 wrk
      connections (a random position or size per request), against reading the same node rows
      with asyncpg from one connection; and the signed checkpoint the same way, which reads no
      database: the HTTP stack's own floor
  (c) building the tree of an existing --events-event log (`ledger migrate`'s work): events/s
  (d) GET /companies/{id} with proof=true against the plain answer, wrk from 16 connections:
      p50/p99 and size

The large log is written straight into the events table (synthetic payloads; the hash chain
is not what is measured here). wrk does the HTTP (append.lua and proofs.lua beside this file),
so this process takes no CPU from the server while it is measured; (b) and (d) also give the
CPU µs per answer of the server and of PostgreSQL, steadier than latency while other work
shares the cores. (b) starts once the server's projector has applied the large log. A script
that prints figures; it asserts nothing. --py-spy FILE records the server during each case of
(b) and (d) (to FILE.<case>) and prints where its time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import database as db
from harness.cpu import CpuMeter, postgres_pids
from harness.processes import Server, ledger_server
from harness.profile import py_spy, summarize_py_spy
from harness.report import fmt, percentiles
from harness.wrk import Wrk, answers, seconds_of

from events import merkle, tree
from events.log import head_position
from tests import factories

HERE = Path(__file__).resolve().parent
APPEND_LUA = HERE / "append.lua"
PROOFS_LUA = HERE / "proofs.lua"
BATCH = 100
BATCH_CONNECTIONS = 4
STREAMS = 10_000
WARMUP_SECONDS = 1
READ_CONNECTIONS = 16
CATCH_UP_SECONDS = 120
WARM_UP_SECONDS = 3.0  # (a)'s unmeasured first appends


def _append_rate(
    wrk: Wrk, server: Server, token: str, postmaster: int | None, mode: str, seconds: float
) -> tuple[float, float]:
    """Warm up, then append with wrk for ``seconds``; return events/s and CPU µs per event.

    The CPU (the server's and PostgreSQL's) per event holds steadier than the rate while other
    work shares the cores; the notary's cost is the difference it makes to it.
    """
    url, auth = f"{server.base_url}/events", {"Authorization": f"Bearer {token}"}
    connections = wrk.connections if mode == "single" else BATCH_CONNECTIONS
    groups = {"server": lambda: [server.pid], "pg": lambda: postgres_pids(postmaster)}
    for length in (WARMUP_SECONDS, seconds):
        script_args = [mode, secrets.token_hex(4), str(BATCH), str(STREAMS)]
        with CpuMeter(groups) as meter:
            figures = wrk.run(APPEND_LUA, url, script_args, length, auth, connections)
    ok, failures = answers(figures, range(201, 202))
    if failures:
        print(f"    failures: {failures}")
    rate = ok * (BATCH if mode == "batch" else 1) / seconds_of(figures)
    return rate, sum(meter.percent.values()) * 1e4 / max(rate, 1)


async def _tree_caught_up(url: str) -> None:
    """Wait until the notary's tree holds the whole log (appended while it was off)."""
    deadline = time.monotonic() + CATCH_UP_SECONDS
    async with db.connected(url) as conn:
        while await tree.built_size(conn) < await head_position(conn):
            assert time.monotonic() < deadline, "the notary did not catch up with the log"
            await asyncio.sleep(0.1)


def case_a(url: str, token: str, args: argparse.Namespace, wrk: Wrk, logs: Path) -> None:
    print(f"(a) appends: events/s and CPU µs/event (notary off and on, {args.rounds} rounds)")
    postmaster = asyncio.run(db.postmaster_pid(url))
    # Unmeasured: the first server on a fresh database runs at about half speed (caches, the
    # table's first pages, statistics), which would count against whichever round went first.
    server = ledger_server(url, logs / "a-warm-up.log", LEDGER_NOTARY="off",
                           LEDGER_DATA_DIR=str(logs))  # fmt: skip
    server.start()
    try:
        for mode in ("single", "batch"):
            _append_rate(wrk, server, token, postmaster, mode, min(args.seconds, WARM_UP_SECONDS))
    finally:
        server.stop()
    runs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for round_ in range(args.rounds):
        for notary in ("off", "on"):
            server = ledger_server(url, logs / f"a-{notary}.log", LEDGER_NOTARY=notary,
                                   LEDGER_DATA_DIR=str(logs))  # fmt: skip
            server.start()
            try:
                if notary == "on":
                    asyncio.run(_tree_caught_up(url))
                this = {
                    mode: _append_rate(wrk, server, token, postmaster, mode, args.seconds)
                    for mode in ("single", "batch")
                }
            finally:
                server.stop()
            for mode, run in this.items():
                runs.setdefault((notary, mode), []).append(run)
            print(
                f"    round {round_ + 1} notary {notary:3}: single {fmt(this['single'][0])} "
                f"({fmt(this['single'][1], 1)})  batches of {BATCH}: {fmt(this['batch'][0])} "
                f"({fmt(this['batch'][1], 1)})"
            )
    for mode in ("single", "batch"):
        what = f"{args.connections} conns, single" if mode == "single" else f"batches of {BATCH}"
        (off, off_cpu), (on, on_cpu) = (
            (statistics.median(r for r, _ in runs[(n, mode)]),
             statistics.median(c for _, c in runs[(n, mode)]))
            for n in ("off", "on")
        )  # fmt: skip
        print(
            f"(a) {what}: median notary off {fmt(off)}, on {fmt(on)} events/s "
            f"({100 * (1 - on / off):+.1f}%); CPU µs/event off {fmt(off_cpu, 1)}, "
            f"on {fmt(on_cpu, 1)} ({100 * (on_cpu / off_cpu - 1):+.1f}%)"
        )


async def _grow_cost(url: str, rounds: int = 5, leaves: int = 24_000) -> tuple[float, float]:
    """The notary's own work for events handed over by the committer, µs an event: hashing
    their leaves and the nodes they complete, and storing the nodes (this process; PostgreSQL).

    Grows the stored tree past the log with synthetic leaves: run it on a database nothing
    else will use. ``leaves`` a round is what the notary stores each second under batches.
    """
    postmaster = await db.postmaster_pid(url)
    here = pg = 0.0
    async with db.connected(url) as conn:
        border = await tree.load_border(conn)
        for _ in range(rounds):
            canonical = [os.urandom(600) for _ in range(leaves)]  # an event's canonical bytes
            with CpuMeter({"pg": lambda: postgres_pids(postmaster)}) as meter:
                began, wall = time.process_time(), time.monotonic()
                await tree.grow(conn, border, [merkle.leaf_hash(c) for c in canonical])
                here += time.process_time() - began
                wall = time.monotonic() - wall
            pg += meter.percent["pg"] / 100 * wall
    return here * 1e6 / (rounds * leaves), pg * 1e6 / (rounds * leaves)


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


@dataclass(frozen=True)
class Reads:
    """How (b) and (d) load the server: wrk with proofs.lua, metered and, if asked, profiled."""

    wrk: Wrk
    server: Server
    token: str
    postmaster: int | None
    seconds: float
    py_spy: str | None

    def measure(self, case: str, script_args: list[str]) -> str:
        """Warm up, then run proofs.lua; return what wrk and /proc measured, in words."""
        base, auth = self.server.base_url, {"Authorization": f"Bearer {self.token}"}
        self.wrk.run(PROOFS_LUA, base, script_args, WARMUP_SECONDS, auth, READ_CONNECTIONS)
        spy = f"{self.py_spy}.{case}" if self.py_spy else None
        pids = {"server": lambda: [self.server.pid], "pg": lambda: postgres_pids(self.postmaster)}
        with CpuMeter(pids) as meter, py_spy(self.server.pid, spy, self.seconds):
            figures = self.wrk.run(
                PROOFS_LUA, base, script_args, self.seconds, auth, READ_CONNECTIONS
            )
        ok, failures = answers(figures, range(200, 300))
        rate = ok / seconds_of(figures)
        # CPU per answer holds steadier than latency while other work shares the cores.
        cpu = ", ".join(
            f"{name} {fmt(percent * 1e4 / max(rate, 1))}" for name, percent in meter.percent.items()
        )
        p50, p99 = figures["p50_us"] / 1000, figures["p99_us"] / 1000
        size = figures["bytes"] / max(figures["requests"], 1)
        summary = (
            f"p50 {fmt(p50, 2)} ms, p99 {fmt(p99, 2)} ms, {fmt(rate)} req/s, "
            f"{fmt(size)} bytes/response; CPU µs/answer: {cpu}"
        )
        if failures:
            summary += f", failures {failures}"
        if spy:
            summary += "\n" + summarize_py_spy(Path(spy), seconds_of(figures))
        return summary


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


def _settled(base: str, headers: dict[str, str]) -> None:
    """Wait for the first checkpoint and for the projector to apply the log it was given."""
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while httpx.get(f"{base}/ledger/checkpoint", headers=headers).status_code != 200:
        assert time.monotonic() < deadline, "no checkpoint"
        time.sleep(0.1)
    while httpx.get(f"{base}/health").json()["projections"]["read_models"]["lag"]:
        assert time.monotonic() < deadline, "the projector did not catch up"
        time.sleep(0.2)


def case_bcd(url: str, token: str, args: argparse.Namespace, wrk: Wrk, logs: Path) -> None:
    rate = asyncio.run(_fill(url, args.events))
    print(f"(c) tree built for {args.events:,} events: {fmt(rate)} events/s")
    server = ledger_server(url, logs / "b.log", LEDGER_DATA_DIR=str(logs))
    server.start()
    postmaster = asyncio.run(db.postmaster_pid(url))
    reads = Reads(wrk, server, token, postmaster, args.seconds, args.py_spy)
    try:
        base, size = server.base_url, args.events
        headers = {"Authorization": f"Bearer {token}"}
        _settled(base, headers)
        for name in ("inclusion", "consistency"):
            summary = reads.measure(name, [name, str(size)])
            print(f"(b) {name} proofs over HTTP, {READ_CONNECTIONS} wrk connections: {summary}")
        summary = reads.measure("checkpoint", ["path", "/ledger/checkpoint"])
        print(f"(b) the signed checkpoint (no database read), the same way: {summary}")
        p50, p99 = asyncio.run(_raw_nodes(url, size, args.requests))
        print(f"(b) the same node rows with asyncpg: p50 {fmt(p50, 2)} ms, p99 {fmt(p99, 2)} ms")
        _case_d(reads, headers)
    finally:
        server.stop()


def _case_d(reads: Reads, headers: dict[str, str]) -> None:
    company = f"bench-{uuid.uuid4().hex[:10]}"
    with httpx.Client(base_url=reads.server.base_url, headers=headers) as http:
        http.post("/events", json=factories.company_registered(company)).raise_for_status()
        http.post("/events", json=factories.round_announced(company)).raise_for_status()
        for i in range(30):
            http.post("/events", json=factories.valuation_reported(company, value=str(10**9 + i)))
        position = http.get(f"/companies/{company}").json()["position"]
        while int(http.get("/ledger/checkpoint").text.split("\n")[1]) < position:
            time.sleep(0.1)
    for label, query in (("plain", ""), ("proof=true", "?proof=true")):
        path = f"/companies/{company}{query}"
        summary = reads.measure(label, ["path", path])
        print(f"(d) company answer {label:10}, {READ_CONNECTIONS} wrk connections: {summary}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--requests", type=int, default=2000, help="(b)'s node reads with asyncpg")
    parser.add_argument("--rounds", type=int, default=3, help="(a)'s rounds of notary off, on")
    parser.add_argument("--skip-appends", action="store_true")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--py-spy", metavar="FILE", help="py-spy (b) and (d): FILE.<case>")
    args = parser.parse_args()
    wrk = Wrk(args.wrk, args.threads, args.connections)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    database = db.Database()
    database.start()
    logs = Path(tempfile.mkdtemp(prefix="ledger-bench-proofs-"))
    try:
        asyncio.run(db.migrate(database.url))
        token = asyncio.run(db.create_token(database.url, "bench", ["admin"]))
        if not args.skip_appends:
            case_a(database.url, token, args, wrk, logs)
        here, pg = asyncio.run(_grow_cost(database.url))
        print(
            f"(a) the notary's own work for handed-over events: {fmt(here, 2)} µs an event here "
            f"(hashing, COPY encoding), {fmt(pg, 2)} µs in PostgreSQL (storing the nodes)"
        )
    finally:
        database.close()
    large = db.Database()  # a log of its own, built from empty
    large.start()
    try:
        asyncio.run(db.migrate(large.url))
        token = asyncio.run(db.create_token(large.url, "bench", ["admin"]))
        case_bcd(large.url, token, args, wrk, logs)
    finally:
        large.close()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
