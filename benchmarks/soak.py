"""A bounded soak: mixed load on `ledger serve` for a while, its memory sampled throughout.

    python benchmarks/soak.py [--seconds 300] [--concurrency 16]

The load mixes single-event appends, point-in-time queries, log reads, webhook deliveries (to a
local receiver) and health checks. The server's resident memory (RSS) is read from /proc every
10 s; after a 30 s warm-up its growth should be flat. Prints the samples and the growth; asserts
nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from typing import Any

from harness import database as db
from harness.processes import Server, free_port, rss_mb
from harness.receivers import receivers
from harness.run import Run, run_main

WARM_UP_SECONDS = 30
SAMPLE_SECONDS = 10
COMPANIES = [f"soak-{i}" for i in range(200)]
SOURCE = {"name": "South China Morning Post"}

Sample = tuple[float, int, float]  # seconds since the start, requests so far, RSS in MB


async def register_companies(http: Any, auth: dict[str, str]) -> None:
    for company in COMPANIES:
        await http.post(
            "/events",
            json={
                "type": "company_registered",
                "effective_date": "2019-01-01",
                "source": SOURCE,
                "data": {"company_id": company, "name": company, "jurisdiction": "CN"},
            },
            headers=auth,
        )


def valuation(rng: random.Random, company: str) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "valuation_reported",
        "effective_date": f"20{rng.randint(10, 25)}-0{rng.randint(1, 9)}-15",
        "source": SOURCE,
        "data": {
            "company_id": company,
            "valuation": {"value": str(rng.randint(10**6, 10**10)), "currency": "USD"},
        },
    }


async def one_request(http: Any, auth: dict[str, str], rng: random.Random) -> None:
    """Half appends, then queries, log reads and health checks."""
    pick = rng.random()
    company = rng.choice(COMPANIES)
    if pick < 0.5:
        await http.post("/events", json=valuation(rng, company), headers=auth)
    elif pick < 0.8:
        await http.get(f"/companies/{company}?as_of=2020-06-30", headers=auth)
    elif pick < 0.9:
        await http.get(f"/events?after={rng.randint(0, 1000)}&limit=50", headers=auth)
    else:
        await http.get("/health")


async def drive(
    base: str, auth: dict[str, str], seconds: float, concurrency: int, pid: int
) -> list[Sample]:
    """Load the server from ``concurrency`` clients for ``seconds``, sampling its memory."""
    import httpx

    done = 0
    samples: list[Sample] = []
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=base, timeout=30, trust_env=False) as http:
        await register_companies(http, auth)

        async def worker(n: int) -> None:
            nonlocal done
            rng = random.Random(n)
            while time.monotonic() < deadline:
                await one_request(http, auth, rng)
                done += 1

        async def sampler() -> None:
            started = time.monotonic()
            while time.monotonic() < deadline:
                samples.append((time.monotonic() - started, done, rss_mb(pid)))
                print(
                    f"  {samples[-1][0]:6.0f} s  {done:>9,} requests  RSS {samples[-1][2]:7.1f} MB",
                    flush=True,
                )
                await asyncio.sleep(SAMPLE_SECONDS)
            samples.append((time.monotonic() - started, done, rss_mb(pid)))

        await asyncio.gather(sampler(), *(worker(n) for n in range(concurrency)))
    return samples


def start_server(run: Run, receiver_port: int) -> tuple[Server, dict[str, str]]:
    """Database, key, `ledger serve` and its webhook endpoint; return the server and auth."""
    import httpx

    run.database.start()
    asyncio.run(db.migrate(run.database.url))
    token = asyncio.run(
        db.create_token(
            run.database.url, "bench", ["events:write", "events:read", "webhooks:manage"]
        )
    )
    auth = {"Authorization": f"Bearer {token}"}
    server = run.ledger("ledger.log", LEDGER_WEBHOOK_ALLOW_PRIVATE="1")
    server.start()
    httpx.post(
        f"{server.base_url}/webhooks",
        json={"url": f"http://127.0.0.1:{receiver_port}/hook"},
        headers=auth,
        trust_env=False,
    ).raise_for_status()
    return server, auth


def summary(samples: list[Sample]) -> str:
    """Requests, rate and the RSS after warm-up, at the end, its growth and peak."""
    settled = [s for s in samples if s[0] >= WARM_UP_SECONDS] or samples
    first, last = settled[0], settled[-1]
    peak = max(s[2] for s in settled)
    rate = last[1] / last[0] if last[0] else 0
    growth = last[2] - first[2]
    return (
        f"\n{last[1]:,} requests in {last[0]:.0f} s ({rate:,.0f}/s); RSS after warm-up "
        f"{first[2]:.1f} MB at {first[0]:.0f} s, {last[2]:.1f} MB at the end "
        f"({growth:+.1f} MB, {100 * growth / first[2]:+.1f}%), peak {peak:.1f} MB"
    )


def soak(run: Run, args: argparse.Namespace) -> int:
    receiver_port = free_port()
    with receivers([receiver_port]):
        server, auth = start_server(run, receiver_port)
        print(f"soak: {args.seconds:g} s, {args.concurrency} clients, server pid {server.pid}")
        samples = asyncio.run(
            drive(server.base_url, auth, args.seconds, args.concurrency, server.pid)
        )
        server.stop()
    print(summary(samples))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(argv)
    return run_main(lambda run: soak(run, args))


if __name__ == "__main__":
    raise SystemExit(main())
