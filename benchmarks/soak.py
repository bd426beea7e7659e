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
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_append import Database, Server, free_port, ledger_server
from bench_webhooks import prepare, wait_listening

WARM_UP_SECONDS = 30
SAMPLE_SECONDS = 10
SOURCE = {"name": "South China Morning Post"}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def drive(
    base: str, auth: dict[str, str], seconds: float, concurrency: int, pid: int
) -> list[tuple[float, int, float]]:
    import httpx

    companies = [f"soak-{i}" for i in range(200)]
    done = 0
    samples: list[tuple[float, int, float]] = []
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=base, timeout=30, trust_env=False) as http:
        for company in companies:
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

        async def worker(n: int) -> None:
            nonlocal done
            rng = random.Random(n)
            while time.monotonic() < deadline:
                pick = rng.random()
                company = rng.choice(companies)
                if pick < 0.5:
                    await http.post(
                        "/events",
                        json={
                            "event_id": str(uuid.uuid4()),
                            "type": "valuation_reported",
                            "effective_date": f"20{rng.randint(10, 25)}-0{rng.randint(1, 9)}-15",
                            "source": SOURCE,
                            "data": {
                                "company_id": company,
                                "valuation": {
                                    "value": str(rng.randint(10**6, 10**10)),
                                    "currency": "USD",
                                },
                            },
                        },
                        headers=auth,
                    )
                elif pick < 0.8:
                    await http.get(f"/companies/{company}?as_of=2020-06-30", headers=auth)
                elif pick < 0.9:
                    await http.get(f"/events?after={rng.randint(0, 1000)}&limit=50", headers=auth)
                else:
                    await http.get("/health")
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(argv)

    database = Database()
    receiver_port = free_port()
    receivers = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).parent / "bench_webhooks.py"),
            "--receivers",
            str(receiver_port),
        ],
        start_new_session=True,
    )
    server: Server | None = None
    try:
        wait_listening(receiver_port)
        database.start()
        token = asyncio.run(prepare(database.url))
        auth = {"Authorization": f"Bearer {token}"}
        server = ledger_server(
            database.url,
            Path(tempfile.mkdtemp(prefix="ledger-soak-")) / "ledger.log",
            LEDGER_WEBHOOK_ALLOW_PRIVATE="1",
        )
        server.start()
        import httpx

        httpx.post(
            f"{server.base_url}/webhooks",
            json={"url": f"http://127.0.0.1:{receiver_port}/hook"},
            headers=auth,
            trust_env=False,
        ).raise_for_status()
        assert server.process is not None
        print(
            f"soak: {args.seconds:g} s, {args.concurrency} clients, server pid {server.process.pid}"
        )
        samples = asyncio.run(
            drive(server.base_url, auth, args.seconds, args.concurrency, server.process.pid)
        )
    finally:
        if server is not None:
            server.stop()
        receivers.kill()
        receivers.wait(timeout=10)
        database.close()
    settled = [s for s in samples if s[0] >= WARM_UP_SECONDS] or samples
    first, last = settled[0], settled[-1]
    peak = max(s[2] for s in settled)
    rate = last[1] / last[0] if last[0] else 0
    growth = last[2] - first[2]
    print(
        f"\n{last[1]:,} requests in {last[0]:.0f} s ({rate:,.0f}/s); RSS after warm-up "
        f"{first[2]:.1f} MB at {first[0]:.0f} s, {last[2]:.1f} MB at the end "
        f"({growth:+.1f} MB, {100 * growth / first[2]:+.1f}%), peak {peak:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
