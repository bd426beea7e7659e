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

The receivers are asyncio HTTP/1.1 servers in a process of their own, answering 200 at once.
The ledger is `ledger serve` with LEDGER_WEBHOOK_ALLOW_PRIVATE=1 (the receivers are on
127.0.0.1). The database is DATABASE_URL's server, else an embedded PostgreSQL; a fresh
database is created and dropped. This script prints figures; it asserts nothing about timing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_append import (
    CpuMeter,
    Database,
    Server,
    fmt,
    free_port,
    ledger_server,
    machine,
    postgres_pids,
    postmaster_pid,
)

ENDPOINTS = 3
BATCH = 100
CONCURRENCY = 64
SOURCE = {"name": "South China Morning Post", "url": "https://www.scmp.com/tech"}

# --------------------------------------------------------------------------- receivers


def serve_receivers(ports: list[int]) -> None:
    """Run the receivers until killed: POST records an arrival; GET returns them all."""
    import uvloop

    arrivals: list[tuple[int, str, float]] = []

    class Receiver(asyncio.Protocol):
        def __init__(self, port: int) -> None:
            self.port = port
            self.buffer = b""
            self.transport: Any = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport  # uvloop's transports are not asyncio.Transport

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while True:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                lines = self.buffer[:end].decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                if len(self.buffer) < end + 4 + length:
                    return
                self.buffer = self.buffer[end + 4 + length :]
                method = lines[0].split(" ", 1)[0]
                body = b""
                if method == "POST":
                    arrivals.append((self.port, headers.get("webhook-id", ""), time.time()))
                elif method == "GET":
                    body = json.dumps(arrivals).encode()
                elif method == "DELETE":
                    arrivals.clear()
                assert self.transport is not None
                self.transport.write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
                )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for port in ports:
            await loop.create_server(lambda p=port: Receiver(p), "127.0.0.1", port, backlog=1024)
        await asyncio.Event().wait()

    uvloop.run(main())


def wait_listening(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


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


async def latency(
    http: Any, base: str, auth: dict[str, str], rate: float, seconds: float, control: int
) -> dict[str, Any]:
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
    offered = total / (time.monotonic() - began)
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


async def ceiling(http_limits: Any, ports: list[int], n: int) -> dict[str, Any]:
    import httpx

    body = json.dumps({"type": "valuation_reported", "data": envelope("x", 0)}).encode() * 2
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(ports[i % len(ports)])
    async with httpx.AsyncClient(limits=http_limits, trust_env=False, timeout=15) as client:

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
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        webhooks = (await http.get(f"{base}/health")).json()["webhooks"]
        if webhooks["pending_deliveries"] == 0 and webhooks["lag"] == 0:
            return
        await asyncio.sleep(0.1)


async def prepare(url: str) -> str:
    import asyncpg

    from events.migrate import migrate
    from service.keys import create_key

    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        _, token = await create_key(conn, "bench", ["events:write", "webhooks:manage"])
    finally:
        await conn.close()
    return token


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000, help="events for (a)")
    parser.add_argument("--rate", type=float, default=200, help="offered events/s for (b)")
    parser.add_argument("--seconds", type=float, default=10, help="duration of (b)")
    parser.add_argument("--receivers", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.receivers:
        serve_receivers([int(p) for p in args.receivers.split(",")])
        return 0

    import httpx
    from rich.console import Console
    from rich.table import Table

    logs = Path(tempfile.mkdtemp(prefix="ledger-bench-logs-"))
    database = Database()
    ports = [free_port() for _ in range(ENDPOINTS)]
    receivers = subprocess.Popen(
        [sys.executable, __file__, "--receivers", ",".join(map(str, ports))],
        start_new_session=True,
    )
    ledger: Server | None = None
    started = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {text}", file=sys.stderr, flush=True)

    try:
        for port in ports:
            wait_listening(port)
        say("starting PostgreSQL" if not os.environ.get("DATABASE_URL") else "using DATABASE_URL")
        database.start()
        token = asyncio.run(prepare(database.url))
        auth = {"Authorization": f"Bearer {token}"}
        ledger = ledger_server(database.url, logs / "ledger.log", LEDGER_WEBHOOK_ALLOW_PRIVATE="1")
        ledger.start()
        postmaster = asyncio.run(postmaster_pid(database.url))
        server_pid = ledger.process.pid if ledger.process else 0
        groups = {
            "srv": lambda: [server_pid],
            "pg": lambda: postgres_pids(postmaster),
            "recv": lambda: [receivers.pid],
        }

        async def run() -> dict[str, Any]:
            limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
            async with httpx.AsyncClient(timeout=30, trust_env=False, limits=limits) as http:
                for p in ports:
                    answer = await http.post(
                        f"{ledger.base_url}/webhooks",
                        json={"url": f"http://127.0.0.1:{p}/hook"},
                        headers=auth,
                    )
                    assert answer.status_code == 201, answer.text
                say("warm-up")
                await throughput(http, ledger.base_url, auth, 300, ports[0])
                await settle(http, ledger.base_url)
                await http.delete(f"http://127.0.0.1:{ports[0]}/")
                say(f"(a) {args.events:,} events in batches of {BATCH} to {ENDPOINTS} endpoints")
                with CpuMeter(groups) as meter_a:
                    a = await throughput(http, ledger.base_url, auth, args.events, ports[0])
                a["cpu"] = meter_a.percent
                await settle(http, ledger.base_url)
                await http.delete(f"http://127.0.0.1:{ports[0]}/")
                say(f"(b) {args.rate:g} events/s for {args.seconds:g}s, one event per POST")
                with CpuMeter(groups) as meter_b:
                    b = await latency(
                        http, ledger.base_url, auth, args.rate, args.seconds, ports[0]
                    )
                b["cpu"] = meter_b.percent
                await http.delete(f"http://127.0.0.1:{ports[0]}/")
            say("(c) httpx straight to the receivers")
            c = await ceiling(
                httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY),
                ports,
                ENDPOINTS * args.events,
            )
            return {"a": a, "b": b, "c": c}

        figures = asyncio.run(run())
    finally:
        if ledger is not None:
            ledger.stop()
        os.killpg(receivers.pid, signal.SIGTERM)
        receivers.wait(timeout=10)
        database.close()

    console = Console(width=140)
    info = Table(title="machine", show_header=False)
    for key, value in machine().items():
        info.add_row(key, value)
    console.print(info)
    a, b, c = figures["a"], figures["b"], figures["c"]
    table = Table(title=f"webhook delivery, {ENDPOINTS} local receivers")
    columns = ("case", "what", "deliveries", "deliveries/s", "p50 ms", "p99 ms", "max ms", "CPU %")
    for name in columns:
        table.add_column(name, justify="left" if name in ("case", "what", "CPU %") else "right")

    def cpu(percent: dict[str, float]) -> str:
        return " ".join(f"{k} {v:.0f}" for k, v in percent.items())

    table.add_row(
        "a",
        f"{args.events:,} events appended in batches of {BATCH} ({a['append_s']:.2f} s)",
        f"{a['deliveries']:,}",
        fmt(a["per_s"]),
        "-",
        "-",
        "-",
        cpu(a["cpu"]),
    )
    table.add_row(
        "b",
        f"{b['offered']:.0f} events/s offered, 1 per POST; ack → arrival",
        f"{b['deliveries']:,} of {b['expected']:,}",
        fmt(b["deliveries"] / args.seconds),
        fmt(b["p50"], 1),
        fmt(b["p99"], 1),
        fmt(b["max"], 1),
        cpu(b["cpu"]),
    )
    table.add_row(
        "c",
        f"httpx straight to the receivers, {CONCURRENCY} concurrent",
        f"{c['deliveries']:,}",
        fmt(c["per_s"]),
        "-",
        "-",
        "-",
        "",
    )
    console.print(table)
    targets = Table(title="targets")
    for name in ("figure", "value", "target", "met"):
        targets.add_column(name)
    for label, value, target, ok in (
        ("(a) deliveries/s", fmt(a["per_s"]), "≥ 2,000", a["per_s"] >= 2000),
        ("(b) p99 ack → arrival", f"{b['p99']:.0f} ms", "≤ 500 ms", b["p99"] <= 500),
        ("(a) / (c)", f"{a['per_s'] / c['per_s']:.0%}", "", True),
    ):
        met = "" if not target else "[green]met[/green]" if ok else "[red]not met[/red]"
        targets.add_row(label, value, target, met)
    console.print(targets)
    console.print(
        "CPU %: user+system over the case, 100 = one core: srv = ledger serve (API and "
        "dispatcher), pg = PostgreSQL, recv = the receivers' process."
    )
    if b["failures"]:
        console.print(f"(b) {b['failures']} appends were not acknowledged")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
