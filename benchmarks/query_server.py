"""`ledger serve` during bench_queries.py: health, the projector's catch-up, warming, metrics."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.request
from typing import Any

from harness.processes import Server
from harness.report import stderr_console
from query_data import LAST_DAY, Figure, company_id


def health(server: Server) -> dict[str, Any]:
    with urllib.request.urlopen(f"{server.base_url}/health", timeout=5) as answer:  # noqa: S310
        result: dict[str, Any] = json.loads(answer.read())
        return result


def wait_caught_up(server: Server, head: int, timeout: float) -> Figure:
    """Wait until the server's projector has applied the whole log (lag 0 in /health)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    began = time.monotonic()
    deadline = began + timeout
    with Progress(
        TextColumn("server's projector catching up"),
        BarColumn(),
        MofNCompleteColumn(),
        console=stderr_console(),
    ) as progress:
        bar = progress.add_task("catch-up", total=head)
        while True:
            state = health(server)["projections"]["read_models"]
            progress.update(bar, completed=state["position"])
            if state.get("error"):
                raise RuntimeError(f"the projector stopped: {state['error']}")
            if state["lag"] == 0 and state["position"] >= head:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the projector did not catch up in {timeout:g}s: {state}")
            if server.process is not None:
                try:  # wait a moment on the server process itself: it keeps going or exits
                    server.process.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    continue
                raise RuntimeError(f"the server exited:\n{server.tail()}")
    elapsed = time.monotonic() - began
    return Figure(
        "proj",
        "server's projector catching up after start (incremental, 1,000 per step)",
        head / elapsed,
        "events/s",
        count=head,
        seconds=elapsed,
        note="includes up to 0.2 s of polling /health",
    )


def sample_answer(server: Server, token: str, companies: int) -> str:
    """Ask for one company and describe the answer, to show the server answers as it should."""
    path = f"/companies/{company_id(companies // 2 or 1)}?as_of=2024-06-30"
    request = urllib.request.Request(  # noqa: S310
        server.base_url + path, headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        body = answer.read()
        company = json.loads(body)
    valuation = company.get("valuation") or {}
    return (
        f"GET {path}: {answer.status}, {len(body):,} bytes, {len(company['rounds'])} rounds, "
        f"{len(company['investors'])} investors, {len(company['approvals'])} approvals, "
        f"{len(company['export_restrictions'])} export restrictions, valuation "
        f"{valuation.get('value')} {valuation.get('currency')} of {valuation.get('effective_date')}"
    )


async def warm_streams(server: Server, token: str, companies: int, concurrency: int = 16) -> float:
    """Ask once for every company, so that the server holds every stream; return the seconds."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    todo = iter(range(1, companies + 1))
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=60) as client:

        async def worker() -> None:
            for n in todo:
                answer = await client.get(f"/companies/{company_id(n)}?as_of={LAST_DAY}")
                answer.raise_for_status()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.monotonic() - started


def stream_reads(server: Server) -> dict[str, float]:
    """The server's held streams and reads so far, from /metrics."""
    with urllib.request.urlopen(server.base_url + "/metrics", timeout=10) as answer:  # noqa: S310
        text = answer.read().decode()
    found = {}
    for line in text.splitlines():
        for name, key in (
            ('ledger_stream_reads_total{result="hit"}', "hit"),
            ('ledger_stream_reads_total{result="miss"}', "miss"),
            ("ledger_stream_cache_events", "events"),
        ):
            if line.startswith(name + " "):
                found[key] = float(line.split()[-1])
    return found
