"""Point-in-time reads and replay of the ledger against raw baselines, in one run on one PostgreSQL.

    python benchmarks/bench_queries.py [--events 1000000] [--companies 10000] [--duration 10]

Steps (see the "Figures" section of DESIGN.md and "Point-in-time answers" in the README):

  load  N events over C company streams (~N/C events each) plus ~20 export-rule streams, built as
        valid envelopes in Python and appended through the store's batched path
        (events.writer.GroupCommitter, in process: batches of --batch events per append call,
        --load-concurrency calls in flight); then ANALYZE events
  warm  one request per company, so that the server holds every stream decoded in memory as
        it would once it has served for a while (service/streams.py); --no-warm skips it
  (A)   GET /companies/{id}?as_of=<random date 2019-2025> against `ledger serve`, wrk with
        --connections connections (queries.lua beside this file picks company and date)
  (A1)  the same from one connection (--latency-probe seconds): the service time without
        queueing; no target
  (A0)  (A) again against a server with the stream cache off (LEDGER_STREAM_CACHE_EVENTS=0):
        every answer reads its stream whole; no target (--no-uncached skips it)
  (B)   raw baseline: asyncpg reads one company stream by index (ORDER BY stream_version) and
        decodes every payload with msgspec into the vocabulary's Structs, --raw-connections
        connections, same duration
  (C)   projections.projector.rebuild of the whole log (what `ledger projections rebuild` runs)
  (D)   raw baseline: the whole log read in position order in chunks with asyncpg, every payload
        decoded with msgspec

Also shown: the load rate, and how fast the server's own projector catches up with the loaded
log after it starts.

The database is DATABASE_URL's server (else an embedded PostgreSQL from pgserver in a temporary
directory); a fresh database is created for the run and dropped at the end. The server is
started only after the load, its projector is left to catch up (lag 0 in /health), and every
wrk case runs a warm-up first. This is a script that prints figures: it asserts nothing about
timing. --py-spy FILE records (A)'s server with py-spy and prints where its time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_append as common
from bench_append import (
    CpuGroups,
    CpuMeter,
    Database,
    Server,
    fmt,
    ledger_server,
    machine,
    postgres_pids,
    postmaster_pid,
    py_spy,
    run_async,
)

HERE = Path(__file__).resolve().parent
LUA_SCRIPT = HERE / "queries.lua"
WARMUP_SECONDS = 2
COMPANY_PREFIX = "co-"
INVESTOR_POOL = 200
RULES = 20
FIRST_DAY = dt.date(2019, 1, 1)
LAST_DAY = dt.date(2025, 12, 31)
REPLAY_CHUNK = 20_000  # projections.projector.rebuild's default chunk
CPU_LABELS = {"server": "srv", "postgres": "pg", "wrk": "wrk", "client": "py"}

# What (B) and (D) read: the columns the ledger's own reads fetch (events/history.py,
# projections/projector.py), by the same indexes.
STREAM_SQL = """
    SELECT event_id, type, position, recorded_at, effective_date, data::text AS data
    FROM events WHERE stream = $1 ORDER BY stream_version
"""
REPLAY_SQL = """
    SELECT stream, event_id, type, position, recorded_at, effective_date, data::text AS data
    FROM events WHERE position > $1 ORDER BY position LIMIT $2
"""


# --------------------------------------------------------------------------- results


@dataclass
class Figure:
    """One case's figures."""

    case: str
    what: str
    rate: float
    unit: str
    p50_ms: float | None = None
    p99_ms: float | None = None
    latency_source: str = ""
    count: int = 0
    seconds: float = 0.0
    failures: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    note: str = ""


# --------------------------------------------------------------------------- the log


def company_id(n: int) -> str:
    return f"{COMPANY_PREFIX}{n}"


@dataclass(slots=True)
class _Slot:
    """What the plan must learn of an event once it has its id (valuations, for corrections)."""

    company: int  # index, or -1 for an event that nothing will refer to
    round: int


class LogPlan:
    """The events of the run, made lazily in recording order.

    Each company has about N/C events: first its company_registered (effective in 2018, so
    that every as_of from 2019 on finds it), then valuations, rounds and a few approvals with
    effective dates spread over 2019-2025, and now and then a correction of one of its earlier
    valuations. The log interleaves the companies as a live ledger would: round r holds the
    r-th event of every company that has one, in a shuffled order, so the events of one
    stream lie far apart in the table. The export-rule streams' changes are spread over the
    rounds.
    """

    def __init__(self, events: int, companies: int, seed: int = 20231017) -> None:
        from events import vocabulary as v

        self.v = v
        self.rng = rng = random.Random(seed)
        self.companies = companies
        self.days = [
            FIRST_DAY + dt.timedelta(days=d) for d in range((LAST_DAY - FIRST_DAY).days + 1)
        ]
        self.investors = [f"investor-{i:03d}" for i in range(1, INVESTOR_POOL + 1)]
        self.sources = [
            v.Source(name="South China Morning Post", url="https://www.scmp.com/tech"),
            v.Source(name="Caixin Global", url="https://www.caixinglobal.com/"),
            v.Source(name="36Kr"),
        ]
        self.rule_events = self._rules()
        company_events = events - sum(len(r) for r in self.rule_events)
        if company_events < companies:
            raise SystemExit(f"--events must be at least --companies + {events - company_events}")
        average = company_events / companies
        counts = [max(1, round(average * rng.uniform(0.75, 1.25))) for _ in range(companies)]
        surplus = sum(counts) - company_events
        while surplus:  # bring the total to exactly N
            i = rng.randrange(companies)
            if surplus > 0 and counts[i] > 1:
                counts[i] -= 1
                surplus -= 1
            elif surplus < 0:
                counts[i] += 1
                surplus += 1
        self.counts = counts
        self.rounds = max(counts)
        self.total = events
        # round -> export-rule envelopes recorded in it (each rule's changes in order)
        self.rules_at: dict[int, list[Any]] = collections.defaultdict(list)
        for changes in self.rule_events:
            for j, envelope in enumerate(changes):
                at = int(self.rounds * (j + rng.random()) / len(changes))
                self.rules_at[min(at, self.rounds - 1)].append(envelope)
        self.valuations: list[list[tuple[uuid.UUID, int]]] = [[] for _ in range(companies)]
        self.kinds: collections.Counter[str] = collections.Counter()

    def _rules(self) -> list[list[Any]]:
        v, rng = self.v, self.rng
        rules = []
        items = ["A100", "H100", "H800", "A800", "EUV lithography", "HBM", "advanced DRAM"]
        for k in range(1, RULES + 1):
            changes = []
            n = rng.randint(3, 7)
            days = sorted(rng.sample(self.days, n))
            for j in range(n):
                action = "imposed" if j == 0 else "amended"
                if j == n - 1 and rng.random() < 0.3:
                    action = "rescinded"
                entities = [company_id(rng.randint(1, self.companies)) for _ in range(3)]
                changes.append(
                    v.ExportRuleEvent(
                        effective_date=days[j],
                        source=v.Source(
                            name="Federal Register", url="https://www.federalregister.gov/"
                        ),
                        data=v.ExportRule(
                            rule_id=f"rule-{k:02d}",
                            issuing_jurisdiction=rng.choice(["US", "US", "NL", "JP"]),
                            authority="Bureau of Industry and Security",
                            title=f"Advanced computing and semiconductor controls {k}",
                            action=action,
                            restricted_items=rng.sample(items, rng.randint(1, 4)),
                            target_jurisdictions=rng.choice([["CN"], ["CN", "HK"], ["CN", "MO"]]),
                            target_entities=sorted(set(entities[: rng.randint(0, 3)])),
                        ),
                    )
                )
            rules.append(changes)
        return rules

    def events(self) -> Iterator[tuple[Any, _Slot]]:
        """Yield every envelope in recording order with what to learn of it."""
        rng = self.rng
        for r in range(self.rounds):
            order: list[Any] = [i for i in range(self.companies) if self.counts[i] > r]
            order.extend(self.rules_at.get(r, ()))
            rng.shuffle(order)
            for item in order:
                if isinstance(item, int):
                    yield self._company_event(item, r)
                else:
                    self.kinds[item.type] += 1
                    yield item, _Slot(-1, r)

    def learn(self, prepared: list[Any], slots: list[_Slot]) -> None:
        """Remember the ids of valuations (a few per company) for later corrections."""
        for event, slot in zip(prepared, slots, strict=True):
            if slot.company >= 0:
                known = self.valuations[slot.company]
                if len(known) < 4:
                    known.append((event.event_id, slot.round))
                else:
                    known[self.rng.randrange(4)] = (event.event_id, slot.round)

    def _company_event(self, i: int, r: int) -> tuple[Any, _Slot]:
        v, rng = self.v, self.rng
        cid = company_id(i + 1)
        source = rng.choice(self.sources)
        if r == 0:
            self.kinds["company_registered"] += 1
            return v.CompanyRegisteredEvent(
                effective_date=dt.date(2018, 1, 1) + dt.timedelta(days=rng.randrange(365)),
                source=source,
                data=v.CompanyRegistered(
                    company_id=cid,
                    name=f"Company {i + 1}",
                    jurisdiction=rng.choice(["CN", "CN", "CN", "CN", "HK", "US", "SG"]),
                    legal_name=f"Company {i + 1} Technology Co., Ltd.",
                ),
            ), _Slot(-1, r)
        u = rng.random()
        if u < 0.03:
            targets = [t for t, at in self.valuations[i] if at <= r - 2]
            if targets:
                self.kinds["event_corrected"] += 1
                return v.EventCorrectedEvent(
                    effective_date=rng.choice(self.days),
                    source=source,
                    data=v.EventCorrected(
                        target_event_id=rng.choice(targets),
                        data={
                            "company_id": cid,
                            "valuation": {"value": self._amount(), "currency": "USD"},
                            "basis": "reported",
                        },
                        effective_date=rng.choice(self.days) if rng.random() < 0.5 else None,
                    ),
                ), _Slot(-1, r)
        if u < 0.62:
            self.kinds["valuation_reported"] += 1
            return v.ValuationReportedEvent(
                effective_date=rng.choice(self.days),
                source=source,
                data=v.ValuationReported(
                    company_id=cid,
                    valuation=v.Money(
                        value=self._amount(), currency="USD" if rng.random() < 0.8 else "CNY"
                    ),
                    basis=rng.choice(["post-money", "pre-money", "reported", None]),
                ),
            ), _Slot(i, r)
        if u < 0.95:
            self.kinds["round_announced"] += 1
            amount = rng.randint(10, 5000) * 1_000_000
            investors = [
                v.InvestorRef(
                    investor_id=slug,
                    name=f"Investor {slug[-3:]}" if rng.random() < 0.5 else None,
                    lead=n == 0 and rng.random() < 0.5,
                )
                for n, slug in enumerate(rng.sample(self.investors, rng.randint(1, 3)))
            ]
            post_money = (
                v.Money(value=self._amount(), currency="USD") if rng.random() < 0.3 else None
            )
            return v.RoundAnnouncedEvent(
                effective_date=rng.choice(self.days),
                source=source,
                data=v.RoundAnnounced(
                    company_id=cid,
                    round_name=f"Series {rng.choice('ABCDEFG')}{rng.randint(1, 3)}",
                    amount=v.Money(value=str(amount), currency="CNY"),
                    amount_usd=str(amount * 100 // 712),
                    investors=investors,
                    post_money_valuation=post_money,
                ),
            ), _Slot(-1, r)
        self.kinds["regulatory_approval"] += 1
        return v.RegulatoryApprovalEvent(
            effective_date=rng.choice(self.days),
            source=source,
            data=v.RegulatoryApproval(
                company_id=cid,
                jurisdiction="CN",
                authority="Cyberspace Administration of China",
                scope=rng.choice(
                    ["generative AI services", "algorithm filing", "cross-border data transfer"]
                ),
                status="granted" if rng.random() < 0.85 else "revoked",
            ),
        ), _Slot(-1, r)

    def _amount(self) -> str:
        return str(self.rng.randint(20, 80_000) * 1_000_000)


async def load(
    url: str, plan: LogPlan, batch: int, concurrency: int, cpu: CpuGroups
) -> tuple[Figure, dict[str, Any]]:
    """Append the whole plan through the GroupCommitter; return the figure and the facts."""
    import msgspec
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from events.decoding import decode_append_body
    from events.errors import LedgerError
    from events.records import prepare
    from events.writer import GroupCommitter
    from service.database import create_pool

    pool = await create_pool(url, 4, command_timeout=600)
    committer = GroupCommitter(pool, max_queue=concurrency + 10, answer_within=600)
    committer.start()
    slots = asyncio.Semaphore(concurrency)
    failures: collections.Counter[str] = collections.Counter()
    first_failure: list[str] = []
    appended = 0
    pending: set[asyncio.Task[None]] = set()
    progress = Progress(
        TextColumn("loading the log"),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} events/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=common_console(),
    )
    bar = progress.add_task("load", total=plan.total, rate="-")
    began = 0.0

    async def send(prepared: list[Any]) -> None:
        nonlocal appended
        try:
            outcome = await committer.append(prepared, is_batch=True)
            appended += len(outcome.receipts)
        except LedgerError as exc:
            failures[type(exc).__name__] += len(prepared)
            if not first_failure:
                first_failure.append(f"{type(exc).__name__}: {exc}")
        finally:
            slots.release()
            rate = appended / max(time.perf_counter() - began, 1e-9)
            progress.update(bar, completed=appended, rate=f"{rate:,.0f}")

    meter = CpuMeter({**cpu, "client": lambda: [os.getpid()]})
    try:
        with progress, meter:
            began = time.perf_counter()
            envelopes: list[Any] = []
            slotted: list[_Slot] = []
            checked = 0
            for envelope, slot in plan.events():
                envelopes.append(envelope)
                slotted.append(slot)
                if len(envelopes) < batch:
                    continue
                if checked < 3:  # the envelopes pass the service's own strict decoding
                    decode_append_body(msgspec.json.encode({"events": envelopes}))
                    checked += 1
                prepared = prepare(envelopes, True)
                plan.learn(prepared, slotted)
                envelopes, slotted = [], []
                await slots.acquire()
                task = asyncio.create_task(send(prepared))
                pending.add(task)
                task.add_done_callback(pending.discard)
                await asyncio.sleep(0)  # let the writer plan while batches are being made
            if envelopes:
                prepared = prepare(envelopes, True)
                await slots.acquire()
                await send(prepared)
            await asyncio.gather(*pending)
            await committer.stop()
            elapsed = time.perf_counter() - began
    finally:
        for task in pending:
            task.cancel()
        with contextlib.suppress(Exception):
            await committer.stop()
        await pool.close()
    groups = committer.groups_committed
    figure = Figure(
        "load",
        f"GroupCommitter, {batch} events/append, {concurrency} appends in flight",
        appended / elapsed,
        "events/s",
        count=appended,
        seconds=elapsed,
        failures=dict(failures),
        cpu=meter.percent,
        note=f"{groups:,} commit groups ({appended / max(groups, 1):,.0f} events/group)",
    )
    if first_failure:
        figure.note += f"; first refusal: {first_failure[0][:300]}"
    return figure, {"groups": groups}


_console: Any = None


def common_console() -> Any:
    """The console progress bars draw on (stderr, so the tables on stdout stay clean)."""
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(stderr=True)
    return _console


async def after_load(url: str) -> dict[str, Any]:
    """ANALYZE the log; return its size, its head and what the server is set to."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        began = time.perf_counter()
        await conn.execute("ANALYZE events")
        analyzed = time.perf_counter() - began
        return {
            "analyze_seconds": analyzed,
            "rows": await conn.fetchval("SELECT count(*) FROM events"),
            "head": await conn.fetchval("SELECT position FROM ledger_head"),
            "streams": await conn.fetchval("SELECT count(*) FROM events WHERE stream_version = 1"),
            "table_size": await conn.fetchval("SELECT pg_size_pretty(pg_table_size('events'))"),
            "index_size": await conn.fetchval("SELECT pg_size_pretty(pg_indexes_size('events'))"),
            "shared_buffers": await conn.fetchval("SHOW shared_buffers"),
            "version": await conn.fetchval("SHOW server_version"),
        }
    finally:
        await conn.close()


async def create_read_key(url: str) -> str:
    import asyncpg

    from service.keys import create_key

    conn = await asyncpg.connect(url)
    try:
        _, token = await create_key(conn, "bench-queries", ["events:read"])
    finally:
        await conn.close()
    return token


# --------------------------------------------------------------------------- server


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
        console=common_console(),
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


def resident_mb(server: Server) -> float:
    """The server process's resident memory, in MB."""
    assert server.process is not None
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


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


def run_wrk(
    url: str,
    args: argparse.Namespace,
    seconds: float,
    headers: dict[str, str],
    connections: int | None = None,
) -> dict[str, Any]:
    """Run wrk with queries.lua for ``seconds``; return the figures its done() printed."""
    days = (LAST_DAY - FIRST_DAY).days + 1
    first = int(dt.datetime.combine(FIRST_DAY, dt.time(), dt.UTC).timestamp())
    script_args = [str(args.companies), COMPANY_PREFIX, str(first), str(days)]
    return common.wrk(
        args.wrk,
        LUA_SCRIPT,
        url,
        script_args,
        seconds,
        headers,
        args.threads,
        connections or args.connections,
    )


def http_case(
    server: Server,
    args: argparse.Namespace,
    token: str,
    postgres: Any,
    case: str = "A",
    connections: int | None = None,
    seconds: float | None = None,
) -> tuple[Figure, str]:
    assert server.process is not None
    auth = {"Authorization": f"Bearer {token}"}
    connections = connections or args.connections
    seconds = seconds or args.duration
    profile = args.py_spy if case == "A" else None
    run_wrk(server.base_url, args, WARMUP_SECONDS, auth, connections)
    pid = server.process.pid
    spied = ""
    with (
        CpuMeter({"server": lambda: [pid], "postgres": postgres}) as meter,
        py_spy(pid, profile, seconds),
    ):
        figures = run_wrk(server.base_url, args, seconds, auth, connections)
    seconds = figures["duration_us"] / 1e6
    statuses = {int(k): v for k, v in figures["statuses"].items()}
    ok = sum(v for k, v in statuses.items() if 200 <= k < 300)
    failures = {str(k): v for k, v in sorted(statuses.items()) if not 200 <= k < 300}
    failures.update({f"socket {k}": v for k, v in figures["errors"].items() if v and k != "status"})
    if profile:
        spied = summarize_py_spy(Path(profile), seconds)
    return (
        Figure(
            case,
            f"GET /companies/{{id}}?as_of=…, {connections} wrk connection"
            + ("s" if connections > 1 else "")
            + (" (service time, no target)" if case != "A" else ""),
            ok / seconds,
            "req/s",
            p50_ms=figures["p50_us"] / 1000,
            p99_ms=figures["p99_us"] / 1000,
            latency_source="wrk",
            count=ok,
            seconds=seconds,
            failures=failures,
            cpu={**meter.percent, "wrk": figures["wrk_cpu_percent"]},
            note=f"mean {figures['mean_us'] / 1000:.2f} ms, p90 {figures['p90_us'] / 1000:.2f} ms, "
            f"max {figures['max_us'] / 1000:.1f} ms, "
            f"{figures['bytes'] / max(figures['requests'], 1):,.0f} bytes/response",
        ),
        spied,
    )


def summarize_py_spy(path: Path, seconds: float, rate: int = 200, top: int = 16) -> str:
    """Say where the server's samples fall: the project's functions (inclusive) and, for the
    frame on top of each stack, the package it belongs to."""
    if not path.exists():
        return f"py-spy wrote nothing to {path}"
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_frame(f) for f in stack.split(";")]
        for name, where in set(frames):
            if _package_of(where) in PROJECT_PACKAGES and where != "service/cli.py":
                inclusive[f"{name} ({where})"] += count
        own[_package(*frames[-1])] += count
    if not total:
        return "py-spy recorded no samples"
    lines = [
        f"py-spy on (A)'s server: {total:,} samples at {rate}/s over {seconds:g}s "
        f"(~{100 * total / (rate * seconds):.0f}% of one core in Python-visible frames); "
        "shares of those samples:",
        "  the project's functions, inclusive (the function and what it calls):",
    ]
    for name, count in inclusive.most_common(top):
        lines.append(f"    {100 * count / total:5.1f}%  {name}")
    lines.append("  where the top frame is (self time by package):")
    for name, count in own.most_common(top):
        lines.append(f"    {100 * count / total:5.1f}%  {name}")
    return "\n".join(lines)


def _frame(text: str) -> tuple[str, str]:
    """``func (path/to/file.py:12)`` -> ``("func", "path/to/file.py")``."""
    name, _, where = text.partition(" (")
    return name, where.rstrip(")").rsplit(":", 1)[0]


PROJECT_PACKAGES = frozenset({"events", "projections", "service"})


def _package_of(where: str) -> str:
    """py-spy names files relative to their sys.path entry: the first part is the package."""
    return where.split("/", 1)[0].removesuffix(".py")


def _package(name: str, where: str) -> str:
    package = _package_of(where)
    if package in PROJECT_PACKAGES:
        return f"ledger: {where}"
    if where == "<string>":
        return "generated __init__ (dataclasses)"
    if name == "Runner.run" and where == "asyncio/runners.py":
        return "event loop itself (uvloop, asyncpg's protocol, httptools: compiled code)"
    if package in sys.stdlib_module_names:
        return f"stdlib: {package}"
    return package or "(unknown)"


# --------------------------------------------------------------------------- raw baselines


def _decoders() -> dict[str, Any]:
    import msgspec

    from events.vocabulary import PAYLOAD_TYPES

    return {kind: msgspec.json.Decoder(cls) for kind, cls in PAYLOAD_TYPES.items()}


async def raw_streams(
    url: str, seconds: float, connections: int, companies: int, cpu: CpuGroups
) -> Figure:
    """(B) read one company stream by index and decode its payloads, from ``connections``."""
    import asyncpg

    decoders = _decoders()
    conns = [await asyncpg.connect(url) for _ in range(connections)]
    try:

        async def run(for_seconds: float) -> tuple[list[float], int]:
            loop = asyncio.get_running_loop()
            stop = loop.time() + for_seconds
            latencies: list[float] = []
            events = 0

            async def worker(conn: asyncpg.Connection) -> None:
                nonlocal events
                rng = random.Random()
                while loop.time() < stop:
                    stream = f"company:{company_id(rng.randint(1, companies))}"
                    started = time.perf_counter()
                    rows = await conn.fetch(STREAM_SQL, stream)
                    for row in rows:
                        decoders[row["type"]].decode(row["data"])
                    latencies.append(time.perf_counter() - started)
                    events += len(rows)

            await asyncio.gather(*(worker(c) for c in conns))
            return latencies, events

        await run(WARMUP_SECONDS)
        meter = CpuMeter({**cpu, "client": lambda: [os.getpid()]})
        with meter:
            began = time.perf_counter()
            latencies, events = await run(seconds)
            elapsed = time.perf_counter() - began
    finally:
        for c in conns:
            await c.close()
    p50, p99 = common._percentiles(latencies)
    return Figure(
        "B",
        f"asyncpg: one company stream by index + msgspec decode, {connections} connections",
        len(latencies) / elapsed,
        "streams/s",
        p50_ms=p50,
        p99_ms=p99,
        latency_source="per stream",
        count=len(latencies),
        seconds=elapsed,
        cpu=meter.percent,
        note=f"{events / max(len(latencies), 1):.1f} events per stream, "
        f"{events / elapsed:,.0f} events/s decoded",
    )


async def rebuild_case(url: str, total: int, cpu: CpuGroups) -> Figure:
    """(C) projections.projector.rebuild over the whole log, as `ledger projections rebuild`."""
    import asyncpg
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from projections.projector import rebuild

    conn = await asyncpg.connect(url)
    try:
        with Progress(
            TextColumn("(C) rebuilding the read models"),
            BarColumn(),
            MofNCompleteColumn(),
            console=common_console(),
        ) as progress:
            bar = progress.add_task("rebuild", total=total)

            def advance(done: int, until: int) -> None:
                progress.update(bar, completed=done, total=until)

            meter = CpuMeter({**cpu, "client": lambda: [os.getpid()]})
            with meter:
                began = time.perf_counter()
                done = await rebuild(conn, advance)
                elapsed = time.perf_counter() - began
        rows = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM rm_companies) AS companies,"
            " (SELECT count(*) FROM rm_investor_companies) AS links"
        )
    finally:
        await conn.close()
    assert rows is not None
    return Figure(
        "C",
        f"projections.projector.rebuild, chunks of {REPLAY_CHUNK:,}",
        done / elapsed,
        "events/s",
        count=done,
        seconds=elapsed,
        cpu=meter.percent,
        note=f"built {rows['companies']:,} companies and {rows['links']:,} investor links",
    )


async def raw_replay(url: str, cpu: CpuGroups) -> Figure:
    """(D) read the whole log in position order in chunks and decode every payload."""
    import asyncpg

    decoders = _decoders()
    conn = await asyncpg.connect(url)
    try:
        meter = CpuMeter({**cpu, "client": lambda: [os.getpid()]})
        with meter:
            began = time.perf_counter()
            after, done = 0, 0
            while True:
                rows = await conn.fetch(REPLAY_SQL, after, REPLAY_CHUNK)
                if not rows:
                    break
                for row in rows:
                    decoders[row["type"]].decode(row["data"])
                after = rows[-1]["position"]
                done += len(rows)
            elapsed = time.perf_counter() - began
    finally:
        await conn.close()
    return Figure(
        "D",
        f"asyncpg: whole log by position, chunks of {REPLAY_CHUNK:,} + msgspec decode",
        done / elapsed,
        "events/s",
        count=done,
        seconds=elapsed,
        cpu=meter.percent,
    )


# --------------------------------------------------------------------------- report


def report(
    figures: dict[str, Figure], info: dict[str, str], kinds: dict[str, int], notes: list[str]
) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(150, shutil.get_terminal_size((150, 24)).columns))
    facts = Table(title="machine and data", show_header=False)
    for key, value in info.items():
        facts.add_row(key, value)
    facts.add_row("event types", ", ".join(f"{k} {v:,}" for k, v in sorted(kinds.items())))
    console.print(facts)

    table = Table(title="point-in-time reads and replay, one run, one PostgreSQL")
    for name, justify in (
        ("case", "left"),
        ("what", "left"),
        ("rate", "right"),
        ("unit", "left"),
        ("p50 ms", "right"),
        ("p99 ms", "right"),
        ("count", "right"),
        ("s", "right"),
        ("non-2xx / errors", "left"),
        ("CPU %", "left"),
    ):
        table.add_column(name, justify=justify, no_wrap=name != "what")  # type: ignore[arg-type]
    for f in figures.values():
        failures = ", ".join(f"{k}: {v:,}" for k, v in f.failures.items()) or "none"
        cpu = " ".join(f"{CPU_LABELS.get(k, k)} {v:.0f}" for k, v in f.cpu.items()) or "-"
        table.add_row(
            f.case,
            f.what,
            fmt(f.rate),
            f.unit,
            fmt(f.p50_ms, 2),
            fmt(f.p99_ms, 2),
            f"{f.count:,}",
            f"{f.seconds:.1f}",
            failures,
            cpu,
        )
    console.print(table)
    console.print(
        "latency: per request as wrk measures it for (A); per stream read (query + decode), "
        "measured in Python, for (B).\nCPU %: user+system time over the measured interval, "
        "100 = one core: srv = `ledger serve`, pg = all PostgreSQL processes, wrk = wrk, "
        "py = this script."
    )
    for f in figures.values():
        if f.note:
            console.print(f"({f.case}) {f.note}")
    for note in notes:
        console.print(note)

    targets = Table(title="targets")
    for name in ("figure", "value", "target", "met"):
        targets.add_column(name)

    def row(label: str, value: float | None, shown: str, wanted: str, ok: bool) -> None:
        if value is None:
            targets.add_row(label, "-", wanted, "not measured")
            return
        targets.add_row(label, shown, wanted, "[green]met[/green]" if ok else "[red]not met[/red]")

    a, b, c, d = (figures.get(k) for k in "ABCD")
    p99 = a.p99_ms if a else None
    row(
        "(A) HTTP p99", p99, f"{p99:.2f} ms" if p99 is not None else "", "≤ 10 ms", (p99 or 0) <= 10
    )
    ratio = a.rate / b.rate if a and b and b.rate else None
    row(
        "(A) req/s ÷ (B) streams/s",
        ratio,
        f"{ratio:.0%}" if ratio else "",
        "≥ 60%",
        (ratio or 0) >= 0.6,
    )
    rate = c.rate if c else None
    row(
        "(C) rebuild",
        rate,
        f"{rate:,.0f} events/s" if rate else "",
        "≥ 100,000 events/s",
        (rate or 0) >= 100_000,
    )
    if c and d and d.rate:
        targets.add_row("(C) ÷ (D) (no target)", f"{c.rate / d.rate:.0%}", "-", "-")
    console.print(targets)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events to load (1,000,000)")
    parser.add_argument("--companies", type=int, default=10_000, help="company streams (10,000)")
    parser.add_argument("--duration", type=float, default=10, help="seconds for (A) and (B) (10)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections for (A) (16)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument(
        "--raw-connections", type=int, default=8, help="asyncpg connections for (B) (8)"
    )
    parser.add_argument("--batch", type=int, default=1000, help="events per append call (1000)")
    parser.add_argument(
        "--load-concurrency", type=int, default=8, help="append calls in flight while loading (8)"
    )
    parser.add_argument(
        "--latency-probe",
        type=float,
        default=5,
        metavar="SECONDS",
        help="also run (A) from one connection for SECONDS, the service time without "
        "queueing (default 5; 0 skips it)",
    )
    parser.add_argument(
        "--pool-size", type=int, default=10, help="the server's LEDGER_POOL_SIZE (10)"
    )
    parser.add_argument(
        "--stream-cache-events",
        type=int,
        help="the server's LEDGER_STREAM_CACHE_EVENTS (default: the service's own, 1,000,000)",
    )
    parser.add_argument(
        "--no-warm",
        dest="warm",
        action="store_false",
        help="skip asking once for every company before (A): measure with streams not yet held",
    )
    parser.add_argument(
        "--no-uncached",
        dest="uncached",
        action="store_false",
        help="skip (A0), (A) again with the stream cache off",
    )
    parser.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk")
    parser.add_argument(
        "--py-spy",
        metavar="FILE",
        dest="py_spy",
        help="record (A)'s server with py-spy into FILE (raw stacks) and summarize it",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.batch <= 1000:
        parser.error("--batch must be between 1 and 1000 (a batch's limit)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not Path(args.wrk).exists():
        print(f"wrk not found at {args.wrk}", file=sys.stderr)
        return 2

    signal.signal(signal.SIGTERM, common._raise_interrupt)
    logs = Path(tempfile.mkdtemp(prefix="ledger-bench-logs-"))
    database = Database()
    servers: list[Server] = []
    figures: dict[str, Figure] = {}
    notes: list[str] = []
    started = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {text}", file=sys.stderr, flush=True)

    try:
        say("starting PostgreSQL" if not os.environ.get("DATABASE_URL") else "using DATABASE_URL")
        database.start()
        run_async(_migrate(database.url))
        postmaster = run_async(postmaster_pid(database.url))

        def postgres() -> list[int]:
            return postgres_pids(postmaster)

        pg: CpuGroups = {"postgres": postgres}
        say(
            f"database {database.name}; planning {args.events:,} events "
            f"over {args.companies:,} companies"
        )
        plan = LogPlan(args.events, args.companies)
        figures["load"], _ = run_async(
            load(database.url, plan, args.batch, args.load_concurrency, pg)
        )
        say(f"loaded in {figures['load'].seconds:.1f}s; ANALYZE events")
        facts = run_async(after_load(database.url))
        notes.append(
            f"(load) ANALYZE events took {facts['analyze_seconds']:.1f}s; the log holds "
            f"{facts['rows']:,} events in {facts['streams']:,} streams (head {facts['head']:,})"
        )
        if facts["rows"] != args.events:
            notes.append(f"[red](load) {args.events - facts['rows']:,} events were refused[/red]")
        token = run_async(create_read_key(database.url))
        cache_env = (
            {}
            if args.stream_cache_events is None
            else {"LEDGER_STREAM_CACHE_EVENTS": str(args.stream_cache_events)}
        )

        ledger = ledger_server(
            database.url,
            logs / "ledger.log",
            LEDGER_POOL_SIZE=str(args.pool_size),
            **cache_env,
        )
        servers.append(ledger)
        say("starting ledger serve")
        ledger.start()
        figures["proj"] = wait_caught_up(ledger, facts["head"], timeout=1800)
        say(sample_answer(ledger, token, args.companies))
        if args.warm:
            say(f"asking once for each of the {args.companies:,} companies (streams held)")
            warmed = run_async(warm_streams(ledger, token, args.companies))
            notes.append(f"(warm) one request per company took {warmed:.1f}s")
        before = stream_reads(ledger)

        say(
            f"(A) GET /companies/{{id}}?as_of=…, {args.connections} connections, {args.duration:g}s"
        )
        figures["A"], spied = http_case(ledger, args, token, postgres)
        if spied:
            notes.append(spied)
        after = stream_reads(ledger)
        hits = after.get("hit", 0) - before.get("hit", 0)
        misses = after.get("miss", 0) - before.get("miss", 0)
        notes.append(
            f"(A) streams held in memory: {after.get('events', 0):,.0f} events, server RSS "
            f"{resident_mb(ledger):,.0f} MB; during (A) and its warm-up {hits:,.0f} reads found "
            f"their stream held, {misses:,.0f} read it whole"
        )
        if args.latency_probe:
            say(f"(A1) the same from 1 connection, {args.latency_probe:g}s")
            figures["A1"], _ = http_case(ledger, args, token, postgres, "A1", 1, args.latency_probe)
        if args.uncached:
            ledger.stop()
            cold = ledger_server(
                database.url,
                logs / "ledger-uncached.log",
                LEDGER_POOL_SIZE=str(args.pool_size),
                LEDGER_STREAM_CACHE_EVENTS="0",
            )
            servers.append(cold)
            say("(A0) the same with LEDGER_STREAM_CACHE_EVENTS=0 (every stream read whole)")
            cold.start()
            wait_caught_up(cold, facts["head"], timeout=1800)
            figures["A0"], _ = http_case(cold, args, token, postgres, "A0")
            cold.stop()
        say(f"(B) raw stream reads, {args.raw_connections} connections, {args.duration:g}s")
        figures["B"] = run_async(
            raw_streams(database.url, args.duration, args.raw_connections, args.companies, pg)
        )
        ledger_log = ledger.tail()
        ledger.stop()  # idle from here on; (C) and (D) have the machine to themselves

        say("(C) rebuilding the read models")
        figures["C"] = run_async(rebuild_case(database.url, facts["head"], pg))
        say("(D) raw replay of the whole log")
        figures["D"] = run_async(raw_replay(database.url, pg))
        say("done")
        if ledger_log.strip():
            print(f"ledger server log (last lines):\n{ledger_log}", file=sys.stderr)

        info = machine()
        info["wrk"] += f", {args.threads} threads, {args.connections} connections"
        info.update(
            {
                "PostgreSQL": str(facts["version"]),
                "database": "DATABASE_URL"
                if os.environ.get("DATABASE_URL")
                else "embedded (pgserver)",
                "shared_buffers": str(facts["shared_buffers"]),
                "events table": f"{facts['rows']:,} rows, heap {facts['table_size']}, "
                f"indexes {facts['index_size']}",
                "companies": f"{args.companies:,} "
                f"(~{args.events / args.companies:,.0f} events each) + {RULES} export-rule "
                f"streams ({sum(len(r) for r in plan.rule_events)} events)",
                "whole run": f"{time.monotonic() - started:.0f} s",
            }
        )
        report(figures, info, dict(plan.kinds), notes)
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip cleanup
        for server in servers:
            server.stop()
        database.close()
        shutil.rmtree(logs, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)


async def _migrate(url: str) -> None:
    import asyncpg

    from events.migrate import migrate

    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()


if __name__ == "__main__":
    raise SystemExit(main())
