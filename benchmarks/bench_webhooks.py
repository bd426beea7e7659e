"""Webhook delivery throughput and latency with three local receivers, all in one run.

    python benchmarks/bench_webhooks.py [--events 10000] [--rate 200] [--seconds 10]

Cases:

  (a) throughput: three endpoints registered, --events events appended through POST /events
      in batches of 100, deliveries/s from the first append to the last arrival
  (b) latency at an offered load: single-event POSTs at --rate events/s for --seconds; for
      each delivery, the time from the append's acknowledgement (the client has read the 201)
      to its arrival at the receiver: p50, p99, max
  (c) ceiling: this script POSTing signed bodies of the same size straight to the receivers
      through httpx with the dispatcher's concurrency (64), no ledger in between

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
from typing import Any

from harness import database as db
from harness.cpu import CpuGroups, CpuMeter, postgres_pids
from harness.processes import Server, free_port
from harness.receivers import receivers
from harness.report import console, facts_table, fmt, machine, targets_table, verdict
from harness.run import Run, run_main

ENDPOINTS = 3
BATCH = 100
CONCURRENCY = 64
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


async def ceiling(ports: list[int], n: int) -> dict[str, Any]:
    """(c) httpx alone POSTing ``n`` bodies to the receivers, CONCURRENCY at a time."""
    import httpx

    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    body = json.dumps({"type": "valuation_reported", "data": envelope("x", 0)}).encode() * 2
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(ports[i % len(ports)])
    async with httpx.AsyncClient(limits=limits, trust_env=False, timeout=15) as client:

        async def worker() -> None:
            while not queue.empty():
                port = queue.get_nowait()
                answer = await client.post(
                    f"http://127.0.0.1:{port}/hook",
                    content=body,
                    headers={"webhook-id": str(uuid.uuid4()), "content-type": "application/json"},
                )
                assert answer.status_code == 200

        began = time.monotonic()
        await asyncio.gather(*[worker() for _ in range(CONCURRENCY)])
        elapsed = time.monotonic() - began
    return {"deliveries": n, "per_s": n / elapsed}


async def settle(http: Any, base: str, within: float = 120) -> None:
    """Wait until nothing is pending and every cursor is at the head."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        webhooks = (await http.get(f"{base}/health")).json()["webhooks"]
        if webhooks["pending_deliveries"] == 0 and webhooks["lag"] == 0:
            return
        await asyncio.sleep(0.1)


# --------------------------------------------------------------------------- the run


async def register(http: Any, base: str, auth: dict[str, str], ports: list[int]) -> None:
    """One endpoint per receiver."""
    for p in ports:
        answer = await http.post(
            f"{base}/webhooks", json={"url": f"http://127.0.0.1:{p}/hook"}, headers=auth
        )
        assert answer.status_code == 201, answer.text


async def ledger_cases(
    run: Run, args: argparse.Namespace, ledger: Server, auth: dict[str, str], ports: list[int],
    groups: CpuGroups,
) -> dict[str, Any]:  # fmt: skip
    """Warm up, then (a) and (b) through the ledger, each with its CPU shares."""
    import httpx

    base, control = ledger.base_url, ports[0]
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(timeout=30, trust_env=False, limits=limits) as http:
        await register(http, base, auth, ports)
        run.say("warm-up")
        await throughput(http, base, auth, 300, control)
        await settle(http, base)
        await http.delete(f"http://127.0.0.1:{control}/")
        run.say(f"(a) {args.events:,} events in batches of {BATCH} to {ENDPOINTS} endpoints")
        with CpuMeter(groups) as meter_a:
            a = await throughput(http, base, auth, args.events, control)
        a["cpu"] = meter_a.percent
        await settle(http, base)
        await http.delete(f"http://127.0.0.1:{control}/")
        run.say(f"(b) {args.rate:g} events/s for {args.seconds:g}s, one event per POST")
        with CpuMeter(groups) as meter_b:
            b = await latency(http, base, auth, args.rate, args.seconds, control)
        b["cpu"] = meter_b.percent
        await http.delete(f"http://127.0.0.1:{control}/")
    return {"a": a, "b": b}


def measure(run: Run, args: argparse.Namespace) -> dict[str, Any]:
    """Start everything, run (a), (b) and (c); return their figures."""
    ports = [free_port() for _ in range(ENDPOINTS)]
    with receivers(ports) as receiving:
        run.start_database()
        asyncio.run(db.migrate(run.database.url))
        token = asyncio.run(
            db.create_token(run.database.url, "bench", ["events:write", "webhooks:manage"])
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
        run.say("(c) httpx straight to the receivers")
        figures["c"] = asyncio.run(ceiling(ports, ENDPOINTS * args.events))
        ledger.stop()
    return figures


# --------------------------------------------------------------------------- report


def cpu(percent: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.0f}" for k, v in percent.items())


def figures_rows(figures: dict[str, Any], args: argparse.Namespace) -> Any:
    from rich.table import Table

    a, b, c = figures["a"], figures["b"], figures["c"]
    table = Table(title=f"webhook delivery, {ENDPOINTS} local receivers")
    columns = ("case", "what", "deliveries", "deliveries/s", "p50 ms", "p99 ms", "max ms", "CPU %")
    for name in columns:
        table.add_column(name, justify="left" if name in ("case", "what", "CPU %") else "right")
    table.add_row(
        "a",
        f"{args.events:,} events appended in batches of {BATCH} ({a['append_s']:.2f} s)",
        f"{a['deliveries']:,}",
        fmt(a["per_s"]),
        *("-", "-", "-"),
        cpu(a["cpu"]),
    )
    table.add_row(
        "b",
        f"{b['offered']:.0f} events/s offered, 1 per POST; ack → arrival",
        f"{b['deliveries']:,} of {b['expected']:,}",
        fmt(b["deliveries"] / args.seconds),
        *(fmt(b["p50"], 1), fmt(b["p99"], 1), fmt(b["max"], 1)),
        cpu(b["cpu"]),
    )
    table.add_row(
        "c",
        f"httpx straight to the receivers, {CONCURRENCY} concurrent",
        f"{c['deliveries']:,}",
        fmt(c["per_s"]),
        *("-", "-", "-", ""),
    )
    return table


def targets(figures: dict[str, Any]) -> Any:
    a, b, c = figures["a"], figures["b"], figures["c"]
    table = targets_table("figure", "value", "target", "met")
    for label, value, target, ok in (
        ("(a) deliveries/s", fmt(a["per_s"]), "≥ 2,000", a["per_s"] >= 2000),
        ("(b) p99 ack → arrival", f"{b['p99']:.0f} ms", "≤ 500 ms", b["p99"] <= 500),
        ("(a) / (c)", f"{a['per_s'] / c['per_s']:.0%}", "", True),
    ):
        table.add_row(label, value, target, verdict(ok) if target else "")
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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def body(run: Run) -> int:
        report(measure(run, args), args)
        return 0

    return run_main(body)


if __name__ == "__main__":
    raise SystemExit(main())
