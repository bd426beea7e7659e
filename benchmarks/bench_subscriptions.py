"""Subscriptions and standbys, all in one run.

    python benchmarks/bench_subscriptions.py [--events 1000000] [--subscribers 100]
        [--rate 200] [--seconds 10] [--queries 2000]

Cases:

  (a) catch-up: one subscriber of GET /events/subscribe reading --events events (events/s),
      against (b) paging GET /events?limit=1000 over the same events, and (c) the raw asyncpg
      read of the same rows in pages of 1000 (no decoding, no HTTP)
  (d) live fan-out: --subscribers subscribers while single-event POSTs arrive at --rate events/s
      for --seconds; for each event and subscriber, the time from sending the append to the
      event's arrival: p50, p99, max (target p99 ≤ 250 ms)
  (e) a hot standby made by `ledger standby`: the time from an append's acknowledgement until
      the standby has replayed it (p50, p99)
  (f) point-in-time queries (GET /companies/{id}, 8 concurrent clients) served by the standby,
      against the same served by the primary (requests/s, p50, p99)

The events are appended through POST /events in batches of 1,000. The database is DATABASE_URL's
server, else an embedded PostgreSQL; a fresh database is created and dropped. This script prints
figures; it asserts nothing about timing.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from harness.database import connected, create_token, migrate
from harness.processes import Server, free_port, run_async
from harness.report import console, facts_table, figures_table, fmt, machine, percentiles
from harness.run import Run, run_main

PAGE = 1000
EVENTS_PER_COMPANY = 100  # as in bench_queries.py: a company's history, not a firehose
SOURCE = {"name": "bench"}


def envelope(company: str, i: int) -> dict[str, Any]:
    if i == 0:
        data = {"company_id": company, "name": company, "jurisdiction": "CN"}
        return {"type": "company_registered", "effective_date": "2020-01-01", "source": SOURCE,
                "data": data}  # fmt: skip
    # one valuation a week: each its own fact, as a company's history is
    day = (dt.date(2020, 1, 1) + dt.timedelta(weeks=i)).isoformat()
    valuation = {"value": str(1_000_000 + i), "currency": "USD"}
    return {"type": "valuation_reported", "effective_date": day, "source": SOURCE,
            "data": {"company_id": company, "valuation": valuation}}  # fmt: skip


def companies(events: int) -> int:
    """How many companies ``events`` events are spread over."""
    return max(1, events // EVENTS_PER_COMPANY)


async def load(base: str, token: str, events: int, say: Any) -> None:
    """Append ``events`` events over their companies, PAGE per request, 4 requests at once."""
    headers = {"Authorization": f"Bearer {token}"}
    counts = [0] * companies(events)
    batches = []
    for start in range(0, events, PAGE):
        batch = []
        for n in range(start, min(events, start + PAGE)):
            c = n % len(counts)
            batch.append(envelope(f"bench-{c}", counts[c]))
            counts[c] += 1
        batches.append(batch)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as http:
        queue = iter(batches)

        async def worker() -> None:
            for batch in queue:
                answer = await http.post("/events", json={"events": batch})
                assert answer.status_code == 201, answer.text

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(4)))
        say(f"loaded {events:,} events in {time.monotonic() - started:.0f} s")


async def catch_up(base: str, token: str, events: int) -> float:
    """Events/s of one subscriber reading ``events`` events from the start."""
    headers = {"Authorization": f"Bearer {token}"}
    seen, started = 0, time.monotonic()
    async with (
        httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as http,
        http.stream("GET", "/events/subscribe") as answer,
    ):
        async for line in answer.aiter_lines():
            if line.startswith("id: "):
                seen += 1
                if seen == events:
                    break
    return events / (time.monotonic() - started)


async def paging(base: str, token: str, events: int) -> float:
    headers = {"Authorization": f"Bearer {token}"}
    after, started = 0, time.monotonic()
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as http:
        while after < events:
            page = (await http.get("/events", params={"after": after, "limit": PAGE})).json()
            after = page["events"][-1]["position"]
    return events / (time.monotonic() - started)


async def raw_read(url: str, events: int) -> float:
    from events.log import EVENT_COLUMNS

    sql = f"SELECT {EVENT_COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2"
    after, started = 0, time.monotonic()
    async with connected(url) as conn:
        while after < events:
            rows = await conn.fetch(sql, after, PAGE)
            after = rows[-1]["position"]
    return events / (time.monotonic() - started)


async def fan_out(server: Server, token: str, args: argparse.Namespace) -> dict[str, Any]:
    """Latency from sending an append to its arrival at each of the subscribers."""
    sent: dict[int, float] = {}
    arrivals: list[tuple[int, float]] = []
    ready = asyncio.Event()
    connected_count = 0

    async def subscriber() -> None:
        nonlocal connected_count
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        head = await _head_of(server)
        writer.write(
            f"GET /events/subscribe?after={head} HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {token}\r\n\r\n".encode()
        )
        connected_count += 1
        if connected_count == args.subscribers:
            ready.set()
        while line := await reader.readline():
            if line.startswith(b"id: "):
                arrivals.append((int(line[4:]), time.perf_counter()))

    tasks = [asyncio.create_task(subscriber()) for _ in range(args.subscribers)]
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=30) as http:
        await ready.wait()
        await asyncio.sleep(1.0)
        interval, started = 1 / args.rate, time.perf_counter()
        pending = []

        async def one(i: int) -> None:
            at = time.perf_counter()
            answer = await http.post("/events", json=envelope(f"live-{i}", 0))
            sent[answer.json()["position"]] = at

        for i in range(int(args.rate * args.seconds)):
            await asyncio.sleep(max(0.0, started + i * interval - time.perf_counter()))
            pending.append(asyncio.create_task(one(i)))
        await asyncio.gather(*pending)
        await asyncio.sleep(2.0)
    for task in tasks:
        task.cancel()
    latencies = [at - sent[p] for p, at in arrivals if p in sent]
    p50, p99 = percentiles(latencies)
    expected = len(sent) * args.subscribers
    return {
        "p50": p50,
        "p99": p99,
        "max": max(latencies) * 1000,
        "missing": expected - len(latencies),
    }


async def _head_of(server: Server) -> int:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        return int((await http.get("/health")).json()["head_position"])


def start_standby(run: Run, root: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = (run.logs / "standby.log").open("ab")
    argv = [sys.executable, "-m", "service.cli", "standby", "--primary", run.database.admin_url,
            "--data-dir", str(root / "standby"), "--port", str(port)]  # fmt: skip
    process = subprocess.Popen(argv, stdout=log, stderr=log)
    url = f"postgresql://postgres@127.0.0.1:{port}/{run.database.name}"
    deadline = time.monotonic() + 120
    while True:
        try:
            run_async(_head(url))
            return process, url
        except Exception:
            assert time.monotonic() < deadline and process.poll() is None, "no standby"
            time.sleep(0.5)


async def _head(url: str) -> int:
    async with connected(url) as conn:
        return int(await conn.fetchval("SELECT position FROM ledger_head"))


async def replay_lag(base: str, token: str, standby: str, samples: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    lags = []
    async with (
        httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http,
        connected(standby) as conn,
    ):
        for i in range(samples):
            answer = await http.post("/events", json=envelope(f"lag-{i}", 0))
            acked, position = time.perf_counter(), answer.json()["position"]
            while await conn.fetchval("SELECT position FROM ledger_head") < position:
                pass
            lags.append(time.perf_counter() - acked)
    p50, p99 = percentiles(lags)
    return {"p50": p50, "p99": p99}


async def queries(base: str, token: str, count: int, spread: int) -> dict[str, Any]:
    """``count`` company answers from 8 clients, over the first ``spread`` companies."""
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    served: set[str] = set()
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:

        async def worker(k: int) -> None:
            for i in range(k, count, 8):
                at = time.perf_counter()
                answer = await http.get(f"/companies/bench-{i % spread}")
                latencies.append(time.perf_counter() - at)
                served.add(answer.headers.get("Ledger-Served-By", "?"))

        started = time.monotonic()
        await asyncio.gather(*(worker(k) for k in range(8)))
        elapsed = time.monotonic() - started
    p50, p99 = percentiles(latencies)
    return {"per_s": count / elapsed, "p50": p50, "p99": p99, "served": ",".join(sorted(served))}


def measure(run: Run, args: argparse.Namespace) -> dict[str, Any]:
    run.start_database()
    run_async(migrate(run.database.url))
    token = run_async(create_token(run.database.url, "bench", ["events:read", "events:write"]))
    primary = run.ledger("primary.log", LEDGER_MAX_SUBSCRIBERS=str(args.subscribers + 10))
    primary.start()
    run_async(load(primary.base_url, token, args.events, run.say))
    figures: dict[str, Any] = {"load": os.getloadavg()}
    run.say("(a) catch-up")
    figures["a"] = run_async(catch_up(primary.base_url, token, args.events))
    run.say("(b) paging")
    figures["b"] = run_async(paging(primary.base_url, token, args.events))
    run.say("(c) raw read")
    figures["c"] = run_async(raw_read(run.database.url, args.events))
    run.say("(d) fan-out")
    figures["d"] = run_async(fan_out(primary, token, args))
    with tempfile.TemporaryDirectory(prefix="ledger-bench-standby-") as root:
        run.say("(e) standby")
        standby, url = start_standby(run, Path(root))
        try:
            replicated = run.ledger("replicated.log", LEDGER_READ_REPLICA_URLS=url)
            replicated.start()
            figures["e"] = run_async(replay_lag(primary.base_url, token, url, 200))
            run.say("(f) queries")
            figures["f_standby"] = run_async(
                queries(replicated.base_url, token, args.queries, companies(args.events))
            )
            figures["f_primary"] = run_async(
                queries(primary.base_url, token, args.queries, companies(args.events))
            )
            replicated.stop()
        finally:
            standby.terminate()
            standby.wait(timeout=60)
    figures["load_after"] = os.getloadavg()
    return figures


def report(figures: dict[str, Any], args: argparse.Namespace) -> None:
    out = console(140)
    out.width = 140
    out.print(facts_table("machine", machine()))
    table = figures_table("subscriptions and standbys", [("what", "left"), ("figure", "right")])
    rows = [
        (f"(a) one subscriber catching up on {args.events:,} events",
         f"{fmt(figures['a'])} events/s"),
        ("(b) paging GET /events?limit=1000", f"{fmt(figures['b'])} events/s"),
        ("(c) raw asyncpg read, pages of 1000", f"{fmt(figures['c'])} events/s"),
        (f"(d) fan-out to {args.subscribers} at {args.rate:g}/s: p50 / p99 / max",
         " / ".join(fmt(figures["d"][k]) for k in ("p50", "p99", "max")) + " ms"),
        ("(d) deliveries missing", str(figures["d"]["missing"])),
        ("(e) standby replay after the ack: p50 / p99",
         f"{fmt(figures['e']['p50'], 1)} / {fmt(figures['e']['p99'], 1)} ms"),
    ]  # fmt: skip
    for name in ("f_standby", "f_primary"):
        f = figures[name]
        rows.append(
            (f"(f) GET /companies/{{id}} served by {f['served']}: req/s, p50 / p99",
             f"{fmt(f['per_s'])}/s, {fmt(f['p50'], 1)} / {fmt(f['p99'], 1)} ms")
        )  # fmt: skip
    for row in rows:
        table.add_row(*row)
    out.print(table)
    before, after = figures["load"], figures["load_after"]
    out.print(f"load average at the start of the cases {before[0]:.1f}, at the end {after[0]:.1f}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events for (a)-(c)")
    parser.add_argument("--subscribers", type=int, default=100, help="subscribers for (d)")
    parser.add_argument("--rate", type=float, default=200, help="appends/s for (d)")
    parser.add_argument("--seconds", type=float, default=10, help="duration of (d)")
    parser.add_argument("--queries", type=int, default=2000, help="queries for (f)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def body(run: Run) -> int:
        report(measure(run, args), args)
        return 0

    return run_main(body)


if __name__ == "__main__":
    raise SystemExit(main())
