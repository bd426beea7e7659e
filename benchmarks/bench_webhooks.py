"""Webhook delivery throughput and latency with three local receivers, all in one run.

    python benchmarks/bench_webhooks.py [--events 10000] [--rate 200] [--seconds 10]

Cases:

  (a) throughput: three endpoints registered, --events events appended through POST /events
      in batches of 100, deliveries/s from the first append to the last arrival; once with
      the three endpoints on ONE receiver host (three paths of one origin), once on THREE
  (b) latency at an offered load, three endpoints on one host: single-event POSTs at --rate
      events/s for --seconds; for each delivery, the time from the append's acknowledgement
      (the client has read the 201) to its arrival at the receiver: p50, p99, max
  (c) raw ceilings: this script POSTing bodies of the same size straight to the receivers with
      the dispatcher's concurrency (64), no ledger in between, through aiohttp (the
      dispatcher's client), httpcore used directly and httpx, to one host and to three
  (d) the receiver's own ceiling: wrk, 64 connections, POSTing to one receiver port

The receivers (harness/receivers.py) are asyncio HTTP/1.1 servers in a process of their own,
answering 200 at once. The ledger is `ledger serve` with LEDGER_WEBHOOK_ALLOW_PRIVATE=1 (the
receivers are on 127.0.0.1). The database is DATABASE_URL's server, else an embedded PostgreSQL;
a fresh database is created and dropped. This script prints figures; it asserts nothing about
timing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

from harness import database as db
from harness.cpu import CpuGroups, CpuMeter, postgres_pids
from harness.processes import Server, free_port
from harness.receivers import receivers
from harness.report import console, facts_table, fmt, machine, targets_table, verdict
from harness.run import Run, run_main
from harness.wrk import Wrk, seconds_of

ENDPOINTS = 3
BATCH = 100
CONCURRENCY = 64
LUA_SCRIPT = Path(__file__).resolve().parent / "append.lua"  # any POST of an envelope will do
SOURCE = {"name": "South China Morning Post", "url": "https://www.scmp.com/tech"}


# --------------------------------------------------------------------------- the driver


def envelope(company: str, i: int) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "valuation_reported",
        "effective_date": "2023-09-15",
        "source": SOURCE,
        "data": {
            "company_id": company,
            "valuation": {"value": str(10**9 + i), "currency": "USD"},
            "basis": "reported",
        },
    }


async def arrivals(http: Any, port: int) -> list[tuple[int, str, float]]:
    answer = await http.get(f"http://127.0.0.1:{port}/")
    return [tuple(a) for a in answer.json()]  # type: ignore[misc]


async def wait_arrivals(http: Any, port: int, n: int, within: float) -> list[Any]:
    deadline = time.monotonic() + within
    while True:
        got = await arrivals(http, port)
        if len(got) >= n or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.1)


async def throughput(
    http: Any, base: str, auth: dict[str, str], events: int, control: int
) -> dict[str, Any]:
    """(a) append ``events`` in batches; deliveries/s from the first append to the last arrival."""
    company = f"bench-{uuid.uuid4().hex[:8]}"
    began = time.time()
    for start in range(0, events, BATCH):
        batch = [envelope(company, i) for i in range(start, min(start + BATCH, events))]
        answer = await http.post(f"{base}/events", json={"events": batch}, headers=auth)
        assert answer.status_code == 201, answer.text
    appended = time.time()
    got = await wait_arrivals(http, control, ENDPOINTS * events, within=300)
    last = max(a[2] for a in got)
    return {
        "deliveries": len(got),
        "seconds": last - began,
        "per_s": len(got) / (last - began),
        "append_s": appended - began,
    }


async def offer(
    http: Any, base: str, auth: dict[str, str], rate: float, seconds: float
) -> tuple[dict[str, float], int, float]:
    """Append one event per POST at ``rate``; return ack times by event id, failures, rate."""
    company = f"bench-{uuid.uuid4().hex[:8]}"
    acknowledged: dict[str, float] = {}
    failures = 0
    began = time.monotonic()
    total = int(rate * seconds)

    async def one(i: int) -> None:
        nonlocal failures
        delay = began + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        answer = await http.post(f"{base}/events", json=envelope(company, i), headers=auth)
        if answer.status_code == 201:
            acknowledged[answer.json()["event_id"]] = time.time()
        else:
            failures += 1

    await asyncio.gather(*[one(i) for i in range(total)])
    return acknowledged, failures, total / (time.monotonic() - began)


async def latency(
    http: Any, base: str, auth: dict[str, str], rate: float, seconds: float, control: int
) -> dict[str, Any]:
    """(b) the time from each append's acknowledgement to each of its arrivals."""
    acknowledged, failures, offered = await offer(http, base, auth, rate, seconds)
    got = await wait_arrivals(http, control, ENDPOINTS * len(acknowledged), within=120)
    latencies = sorted(
        (at - acknowledged[event_id]) * 1000 for _, event_id, at in got if event_id in acknowledged
    )

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    return {
        "offered": offered,
        "deliveries": len(latencies),
        "expected": ENDPOINTS * len(acknowledged),
        "failures": failures,
        "p50": pct(0.50),
        "p99": pct(0.99),
        "max": latencies[-1],
    }


BODY = json.dumps({"type": "valuation_reported", "data": envelope("x", 0)}).encode() * 2


async def drive(post: Any, targets: list[str], n: int) -> dict[str, Any]:
    """POST ``n`` bodies round-robin over ``targets``, CONCURRENCY at a time; requests/s."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(targets[i % len(targets)])

    async def worker() -> None:
        while not queue.empty():
            url = queue.get_nowait()
            headers = {"webhook-id": str(uuid.uuid4()), "content-type": "application/json"}
            assert await post(url, headers) == 200

    began = time.monotonic()
    await asyncio.gather(*[worker() for _ in range(CONCURRENCY)])
    return {"deliveries": n, "per_s": n / (time.monotonic() - began)}


async def ceiling_aiohttp(targets: list[str], n: int) -> dict[str, Any]:
    """(c) aiohttp's client, set up as the dispatcher's (one connector, no DNS cache)."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=CONCURRENCY, use_dns_cache=False)
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def post(url: str, headers: dict[str, str]) -> int:
            async with session.post(url, data=BODY, headers=headers) as answer:
                await answer.read()
                return answer.status

        return await drive(post, targets, n)


async def ceiling_httpcore(targets: list[str], n: int) -> dict[str, Any]:
    """(c) httpcore's connection pool used directly."""
    import httpcore

    async with httpcore.AsyncConnectionPool(max_connections=CONCURRENCY) as pool:

        async def post(url: str, headers: dict[str, str]) -> int:
            answer = await pool.request("POST", url, headers=headers, content=BODY)
            return answer.status

        return await drive(post, targets, n)


async def ceiling_httpx(targets: list[str], n: int) -> dict[str, Any]:
    """(c) httpx, one client."""
    import httpx

    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(limits=limits, trust_env=False, timeout=15) as client:

        async def post(url: str, headers: dict[str, str]) -> int:
            return (await client.post(url, content=BODY, headers=headers)).status_code

        return await drive(post, targets, n)


CEILINGS = {"aiohttp": ceiling_aiohttp, "httpcore": ceiling_httpcore, "httpx": ceiling_httpx}


def ceilings(ports: list[int], n: int, slow_n: int) -> dict[str, Any]:
    """(c) every client to one host and to three hosts."""
    shapes = {
        "one": [f"http://127.0.0.1:{ports[0]}/{p}" for p in "abc"],
        "three": [f"http://127.0.0.1:{p}/hook" for p in ports],
    }
    return {
        f"{name} {shape}": asyncio.run(fn(targets, n if name == "aiohttp" else slow_n))
        for name, fn in CEILINGS.items()
        for shape, targets in shapes.items()
    }


def receiver_ceiling(port: int, seconds: float) -> dict[str, Any]:
    """(d) wrk POSTing envelopes to one receiver port."""
    wrk = Wrk("wrk", threads=2, connections=CONCURRENCY)
    nonce = uuid.uuid4().hex[:8]
    figures = wrk.run(LUA_SCRIPT, f"http://127.0.0.1:{port}/hook", ["single", nonce], seconds, {})
    return {"deliveries": figures["requests"], "per_s": figures["requests"] / seconds_of(figures)}


async def settle(http: Any, base: str, within: float = 120) -> None:
    """Wait until nothing is pending and every cursor is at the head."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        webhooks = (await http.get(f"{base}/health")).json()["webhooks"]
        if webhooks["pending_deliveries"] == 0 and webhooks["lag"] == 0:
            return
        await asyncio.sleep(0.1)


# --------------------------------------------------------------------------- the run


async def register(http: Any, base: str, auth: dict[str, str], urls: list[str]) -> list[str]:
    """One endpoint per URL; return their ids."""
    ids = []
    for url in urls:
        answer = await http.post(f"{base}/webhooks", json={"url": url}, headers=auth)
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])
    return ids


async def ledger_cases(
    run: Run, args: argparse.Namespace, ledger: Server, auth: dict[str, str], ports: list[int],
    groups: CpuGroups,
) -> dict[str, Any]:  # fmt: skip
    """Warm up, then (a) and (b) through the ledger, each with its CPU shares."""
    import httpx

    base, control = ledger.base_url, ports[0]
    one_host = [f"http://127.0.0.1:{control}/{p}" for p in "abc"]
    three_hosts = [f"http://127.0.0.1:{p}/hook" for p in ports]
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    figures: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=30, trust_env=False, limits=limits) as http:
        for shape, urls in (("one", one_host), ("three", three_hosts)):
            ids = await register(http, base, auth, urls)
            run.say(f"warm-up, {shape} host(s)")
            await throughput(http, base, auth, 300, control)
            await settle(http, base)
            await http.delete(f"http://127.0.0.1:{control}/")
            run.say(f"(a) {args.events:,} events in batches of {BATCH}, {shape} host(s)")
            with CpuMeter(groups) as meter_a:
                figures[f"a {shape}"] = await throughput(http, base, auth, args.events, control)
            figures[f"a {shape}"]["cpu"] = meter_a.percent
            await settle(http, base)
            await http.delete(f"http://127.0.0.1:{control}/")
            if shape == "one":
                run.say(f"(b) {args.rate:g} events/s for {args.seconds:g}s, one event per POST")
                with CpuMeter(groups) as meter_b:
                    b = await latency(http, base, auth, args.rate, args.seconds, control)
                b["cpu"] = meter_b.percent
                figures["b"] = b
                await settle(http, base)
                await http.delete(f"http://127.0.0.1:{control}/")
            for endpoint_id in ids:
                await http.delete(f"{base}/webhooks/{endpoint_id}", headers=auth)
    return figures


def measure(run: Run, args: argparse.Namespace) -> dict[str, Any]:
    """Start everything, run (a), (b) and (c); return their figures."""
    ports = [free_port() for _ in range(ENDPOINTS)]
    with receivers(ports) as receiving:
        run.start_database()
        asyncio.run(db.migrate(run.database.url))
        token = asyncio.run(
            db.create_token(
                run.database.url, "bench", ["events:write", "events:read", "webhooks:manage"]
            )
        )
        ledger = run.ledger("ledger.log", LEDGER_WEBHOOK_ALLOW_PRIVATE="1")
        ledger.start()
        postmaster = asyncio.run(db.postmaster_pid(run.database.url))
        server_pid = ledger.pid
        groups: CpuGroups = {
            "srv": lambda: [server_pid],
            "pg": lambda: postgres_pids(postmaster),
            "recv": lambda: [receiving.pid],
        }
        auth = {"Authorization": f"Bearer {token}"}
        figures = asyncio.run(ledger_cases(run, args, ledger, auth, ports, groups))
        ledger.stop()
        run.say("(c) each client straight to the receivers")
        figures["c"] = ceilings(ports, args.ceiling_requests, args.slow_ceiling_requests)
        run.say("(d) wrk straight to one receiver")
        figures["d"] = receiver_ceiling(ports[0], args.wrk_seconds)
    return figures


# --------------------------------------------------------------------------- report


def cpu(percent: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.0f}" for k, v in percent.items())


def figures_rows(figures: dict[str, Any], args: argparse.Namespace) -> Any:
    from rich.table import Table

    b = figures["b"]
    table = Table(title=f"webhook delivery, {ENDPOINTS} endpoints, local receivers")
    columns = ("case", "what", "deliveries", "deliveries/s", "p50 ms", "p99 ms", "max ms", "CPU %")
    for name in columns:
        table.add_column(name, justify="left" if name in ("case", "what", "CPU %") else "right")
    for shape in ("one", "three"):
        a = figures[f"a {shape}"]
        table.add_row(
            "a",
            f"{args.events:,} events in batches of {BATCH}, endpoints on {shape} host(s) "
            f"(appended in {a['append_s']:.2f} s)",
            f"{a['deliveries']:,}",
            fmt(a["per_s"]),
            *("-", "-", "-"),
            cpu(a["cpu"]),
        )
    table.add_row(
        "b",
        f"{b['offered']:.0f} events/s offered, 1 per POST, one host; ack → arrival",
        f"{b['deliveries']:,} of {b['expected']:,}",
        fmt(b["deliveries"] / args.seconds),
        *(fmt(b["p50"], 1), fmt(b["p99"], 1), fmt(b["max"], 1)),
        cpu(b["cpu"]),
    )
    for name, c in figures["c"].items():
        client, shape = name.split()
        table.add_row(
            "c",
            f"{client} straight to {shape} host(s), {CONCURRENCY} in flight",
            f"{c['deliveries']:,}",
            fmt(c["per_s"]),
            *("-", "-", "-", ""),
        )
    d = figures["d"]
    table.add_row(
        "d",
        f"wrk straight to one receiver, {CONCURRENCY} connections",
        f"{d['deliveries']:,}",
        fmt(d["per_s"]),
        *("-", "-", "-", ""),
    )
    return table


def targets(figures: dict[str, Any]) -> Any:
    b, c = figures["b"], figures["c"]
    table = targets_table("figure", "value", "target", "met")
    rows = []
    for shape in ("one", "three"):
        per_s, raw = figures[f"a {shape}"]["per_s"], c[f"aiohttp {shape}"]["per_s"]
        rows += [
            (f"(a) deliveries/s, {shape} host(s)", fmt(per_s), "≥ 2,000", per_s >= 2000),
            (
                f"(a) / aiohttp's ceiling, {shape}",
                f"{per_s / raw:.0%}",
                "≥ 30%",
                per_s >= 0.3 * raw,
            ),
        ]
    rows.append(("(b) p99 ack → arrival", f"{b['p99']:.0f} ms", "≤ 250 ms", b["p99"] <= 250))
    for label, value, target, ok in rows:
        table.add_row(label, value, target, verdict(ok))
    return table


def report(figures: dict[str, Any], args: argparse.Namespace) -> None:
    out = console(140)
    out.width = 140  # a fixed width, wider terminals or not
    out.print(facts_table("machine", machine()))
    out.print(figures_rows(figures, args))
    out.print(targets(figures))
    out.print(
        "CPU %: user+system over the case, 100 = one core: srv = ledger serve (API and "
        "dispatcher), pg = PostgreSQL, recv = the receivers' process."
    )
    if figures["b"]["failures"]:
        out.print(f"(b) {figures['b']['failures']} appends were not acknowledged")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000, help="events for (a)")
    parser.add_argument("--rate", type=float, default=200, help="offered events/s for (b)")
    parser.add_argument("--seconds", type=float, default=10, help="duration of (b)")
    parser.add_argument(
        "--ceiling-requests", type=int, default=30_000, help="requests per aiohttp case of (c)"
    )
    parser.add_argument(
        "--slow-ceiling-requests",
        type=int,
        default=3_000,
        help="requests per httpcore and httpx case of (c)",
    )
    parser.add_argument("--wrk-seconds", type=float, default=5, help="duration of (d)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def body(run: Run) -> int:
        report(measure(run, args), args)
        return 0

    return run_main(body)


if __name__ == "__main__":
    raise SystemExit(main())
