"""Append throughput of the ledger against its baselines, all in one run on one PostgreSQL.

    python benchmarks/bench_append.py [--duration 10] [--connections 64]

Cases (see the "Figures" section of DESIGN.md):

  (a)  POST /events, one envelope per request, wrk with --connections, against `ledger serve`
  (b)  POST /events, batches of 100 envelopes per request, same server
  (c1) raw asyncpg: one INSERT per transaction from 16 connections under a global lock
       (a locked head row, as the ledger does), the hash chained in Python
  (c2) raw asyncpg: `unnest` batches of 100 rows per transaction (1 and 4 connections)
  (d)  Litestar's own ceiling: a minimal app that decodes the same envelope and stores nothing

The database is DATABASE_URL's server (else an embedded PostgreSQL from pgserver in a temporary
directory); a fresh database is created for the run and dropped at the end. This is a script
that prints figures: it asserts nothing about timing.

The log starts empty, so during the run `events` has no planner statistics yet (autovacuum
analyses it only after its naptime); --analyze runs ANALYZE after each warm-up instead, as a
long-running server would have had. --py-spy FILE records case (a)'s server with py-spy.
Every wrk case runs a warm-up first; wrk uses append.lua beside this file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
LUA_SCRIPT = HERE / "append.lua"
BATCH = 100
STREAMS = 10_000
C1_CONNECTIONS = 16
C2_CONNECTIONS = (1, 4)
WARMUP_SECONDS = 2
CPU_LABELS = {"server": "srv", "postgres": "pg", "wrk": "wrk", "client": "py"}

SOURCE_JSON = '{"name":"South China Morning Post","url":"https://www.scmp.com/tech"}'


# --------------------------------------------------------------------------- results


@dataclass
class Result:
    """One case's figures."""

    case: str
    what: str
    events_per_s: float
    requests_per_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    latency_source: str = ""
    ok: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    note: str = ""


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    """Return a TCP port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_database(url: str, name: str) -> str:
    """Return ``url`` pointing at database ``name``."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[int, int] | None:
    """Return (ppid, user+system clock ticks) of a process, or None if it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), int(fields[11]) + int(fields[12])


def postgres_pids(postmaster: int | None) -> list[int]:
    """Return the postmaster and its children (the backends), when they are on this machine."""
    if postmaster is None or _stat(postmaster) is None:
        return []
    pids = [postmaster]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[0] == postmaster:
                pids.append(int(entry.name))
    return pids


CpuGroups = dict[str, Callable[[], list[int]]]


class CpuMeter:
    """CPU time of groups of processes over an interval, as % of one core.

    The groups' pids are taken when the interval starts; a process that ends before the
    interval does loses its share (the benchmarks keep their connections open throughout).
    """

    def __init__(self, groups: CpuGroups) -> None:
        self._find = groups
        self.groups: dict[str, list[int]] = {}
        self._start: dict[int, int] = {}
        self._began = 0.0
        self.percent: dict[str, float] = {}

    def _ticks(self) -> dict[int, int]:
        ticks = {}
        for pids in self.groups.values():
            for pid in pids:
                stat = _stat(pid)
                if stat is not None:
                    ticks[pid] = stat[1]
        return ticks

    def __enter__(self) -> CpuMeter:
        self.groups = {name: find() for name, find in self._find.items()}
        self._start = self._ticks()
        self._began = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        end, elapsed = self._ticks(), time.monotonic() - self._began
        self.percent = {
            name: 100
            * sum(end.get(p, 0) - self._start.get(p, 0) for p in pids if p in end)
            / _TICKS
            / elapsed
            for name, pids in self.groups.items()
            if pids
        }


class Server:
    """An HTTP server subprocess in its own session (so Ctrl-C reaches only us; we stop it)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int, log: Path):
        self.name, self.argv, self.env, self.port, self.log = name, argv, env, port, log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.base_url}/health", timeout=1) as answer:  # noqa: S310
                    if answer.status == 200:
                        return
            except OSError:
                pass
            try:  # wait a moment on the process itself: it either keeps starting or exits
                self.process.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                continue
            raise RuntimeError(f"{self.name} exited at start:\n{self.tail()}")
        raise RuntimeError(f"{self.name} did not answer /health in {timeout}s:\n{self.tail()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def run_wrk(
    url: str, args: argparse.Namespace, mode: str, seconds: float, headers: dict[str, str]
) -> dict[str, Any]:
    """Run wrk with the append script for ``seconds``; return the figures its done() printed."""
    script_args = [mode, secrets.token_hex(4), str(BATCH), str(STREAMS)]
    return wrk(
        args.wrk, LUA_SCRIPT, url, script_args, seconds, headers, args.threads, args.connections
    )


def wrk(
    program: str,
    script: Path,
    url: str,
    script_args: list[str],
    seconds: float,
    headers: dict[str, str],
    threads: int,
    connections: int,
) -> dict[str, Any]:
    """Run wrk with a Lua ``script`` whose done() prints BENCH_JSON; return those figures."""
    argv = [program, "-t", str(min(threads, connections)), "-c", str(connections)]
    argv += ["-d", f"{seconds:g}s", "--timeout", "10s", "-s", str(script)]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    argv += [url, "--", *script_args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.monotonic()
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    elapsed = time.monotonic() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            figures: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
            used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            figures["wrk_cpu_percent"] = 100 * used / elapsed
            return figures
    raise RuntimeError(
        f"wrk printed no figures (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    )


def wrk_result(case: str, what: str, figures: dict[str, Any], events_per_request: int) -> Result:
    seconds = figures["duration_us"] / 1e6
    statuses = {int(k): v for k, v in figures["statuses"].items()}
    ok = statuses.get(201, 0)
    failures = {str(k): v for k, v in sorted(statuses.items()) if k != 201}
    failures.update({f"socket {k}": v for k, v in figures["errors"].items() if v and k != "status"})
    return Result(
        case=case,
        what=what,
        events_per_s=ok * events_per_request / seconds,
        requests_per_s=ok / seconds,
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        latency_source="wrk",
        ok=ok,
        failures=failures,
    )


# --------------------------------------------------------------------------- database


class Database:
    """The PostgreSQL of the run and the fresh database created in it."""

    def __init__(self) -> None:
        self.admin_url = ""
        self.url = ""
        self.name = f"ledger_bench_{uuid.uuid4().hex[:12]}"
        self.embedded: Any = None
        self.tempdir: str | None = None
        self.created = False

    def start(self) -> None:
        if os.environ.get("DATABASE_URL"):
            self.admin_url = os.environ["DATABASE_URL"]
        else:
            with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
                warnings.simplefilter("ignore")
                pgserver: Any = importlib.import_module("pgserver")
            self.tempdir = tempfile.mkdtemp(prefix="ledger-bench-pg-")
            self.embedded = pgserver.get_server(self.tempdir, cleanup_mode="stop")
            self.admin_url = self.embedded.get_uri()
        self.url = with_database(self.admin_url, self.name)
        asyncio.run(self._create())

    async def _create(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{self.name}"')
            self.created = True
        finally:
            await conn.close()

    def close(self) -> None:
        if self.created:
            try:
                asyncio.run(self._drop())
                self.created = False
            except Exception as exc:  # cleanup goes on
                print(f"warning: could not drop database {self.name}: {exc}", file=sys.stderr)
        if self.embedded is not None:
            with contextlib.suppress(Exception):
                self.embedded.cleanup()
            self.embedded = None
        if self.tempdir is not None:
            shutil.rmtree(self.tempdir, ignore_errors=True)
            self.tempdir = None

    async def _drop(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            await conn.close()


async def prepare_database(url: str) -> tuple[str, str]:
    """Migrate, create the baseline tables and a write key; return (token, server version)."""
    import asyncpg

    from events.migrate import migrate
    from service.keys import create_key

    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        # Same columns, constraints and indexes as `events`; LIKE copies no trigger.
        await conn.execute(
            """CREATE TABLE bench_events (LIKE events INCLUDING ALL);
               CREATE TABLE bench_head (LIKE ledger_head INCLUDING ALL);
               INSERT INTO bench_head (position, hash, recorded_at)
               VALUES (0, decode(repeat('00', 32), 'hex'), '1970-01-01T00:00:00Z');"""
        )
        _, token = await create_key(conn, "bench", ["events:write"])
        version = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    return token, str(version)


async def analyze(url: str) -> None:
    """Gather the planner's statistics on the log (the server's cached plans are then redone)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("ANALYZE events")
    finally:
        await conn.close()


async def head_position(url: str) -> int:
    """Return the position of the last event in the ledger's log."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT coalesce(max(position), 0) FROM events"))
    finally:
        await conn.close()


async def groups_since(url: str, after: int) -> tuple[int, int]:
    """Return (events, commit groups) appended after ``after``: a group shares one recorded_at."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT count(*), count(DISTINCT recorded_at) FROM events WHERE position > $1", after
        )
        assert row is not None
        return int(row[0]), int(row[1])
    finally:
        await conn.close()


async def postmaster_pid(url: str) -> int | None:
    """Return the postmaster's pid when the server runs on this machine, else None."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        stat = _stat(int(await conn.fetchval("SELECT pg_backend_pid()")))
    finally:
        await conn.close()
    return stat[0] if stat is not None else None


# --------------------------------------------------------------------------- (c) raw asyncpg


_LOCK_HEAD = "SELECT position, hash FROM bench_head WHERE singleton FOR UPDATE"

_INSERT_ONE = """
WITH inserted AS (
    INSERT INTO bench_events (position, event_id, stream, stream_version, type, effective_date,
                              recorded_at, source, data, metadata, target_event_id, hash)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8::json, $9::json, NULL, NULL, $10)
)
UPDATE bench_head SET position = $1, hash = $10, recorded_at = $7 WHERE singleton"""

_INSERT_MANY = """
WITH inserted AS (
    INSERT INTO bench_events (position, event_id, stream, stream_version, type, effective_date,
                              recorded_at, source, data, metadata, target_event_id, hash)
    SELECT p, i, s, v, t, d, $7, src, dat, NULL, NULL, h
    FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::int[], $5::text[], $6::date[],
                $8::json[], $9::json[], $10::bytea[]) AS u(p, i, s, v, t, d, src, dat, h)
)
UPDATE bench_head SET position = $11, hash = $12, recorded_at = $7 WHERE singleton"""


class Contents:
    """Row content like the ledger's: canonical JSON text, streams spread over many companies."""

    def __init__(self) -> None:
        import random

        from events.chain import canonical_json

        self._canonical = canonical_json
        self._random = random.Random()
        self.versions: dict[str, int] = {}

    def make(self, n: int) -> tuple[uuid.UUID, str, str, dt.date, str]:
        company = f"bench-{self._random.randint(1, STREAMS)}"
        data: dict[str, Any]
        if n % 2:
            data = {"company_id": company, "name": f"Bench Company {company}", "jurisdiction": "CN"}
            kind, date = "company_registered", dt.date(2019, 6, 1)
        else:
            value = f"{self._random.randint(1, 999_999_999)}000"
            data = {
                "company_id": company,
                "valuation": {"value": value, "currency": "USD"},
                "basis": "reported",
            }
            kind, date = "valuation_reported", dt.date(2023, 9, 15)
        return uuid.uuid4(), f"company:{company}", kind, date, self._canonical(data)


def _hash(
    previous: bytes,
    position: int,
    event_id: uuid.UUID,
    stream: str,
    version: int,
    kind: str,
    date: dt.date,
    recorded_at: dt.datetime,
    data: str,
) -> bytes:
    from events.chain import chain, event_bytes

    return chain(
        previous,
        event_bytes(
            position=position,
            event_id=event_id,
            stream=stream,
            stream_version=version,
            type=kind,
            schema_version=1,
            effective_date=date,
            recorded_at=recorded_at,
            source=SOURCE_JSON,
            data=data,
            metadata=None,
        ),
    )


def _percentiles(latencies: list[float]) -> tuple[float | None, float | None]:
    if not latencies:
        return None, None
    ordered = sorted(latencies)
    return (
        ordered[len(ordered) // 2] * 1000,
        ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    )


async def raw_single(
    url: str, seconds: float, connections: int, contents: Contents, cpu: CpuGroups
) -> Result:
    """(c1) one event per transaction, serialised on the head row, from ``connections``."""
    import asyncpg

    conns = [await asyncpg.connect(url) for _ in range(connections)]
    latencies: list[float] = []
    done = 0
    try:
        loop = asyncio.get_running_loop()
        stop = loop.time() + seconds

        async def worker(conn: asyncpg.Connection) -> None:
            nonlocal done
            n = 0
            while loop.time() < stop:
                n += 1
                event_id, stream, kind, date, data = contents.make(n)
                started = time.perf_counter()
                async with conn.transaction():
                    head = await conn.fetchrow(_LOCK_HEAD)
                    assert head is not None
                    position = head["position"] + 1
                    version = contents.versions.get(stream, 0) + 1  # under the lock
                    recorded_at = dt.datetime.now(dt.UTC)
                    digest = _hash(
                        bytes(head["hash"]),
                        position,
                        event_id,
                        stream,
                        version,
                        kind,
                        date,
                        recorded_at,
                        data,
                    )
                    await conn.execute(
                        _INSERT_ONE,
                        position,
                        event_id,
                        stream,
                        version,
                        kind,
                        date,
                        recorded_at,
                        SOURCE_JSON,
                        data,
                        digest,
                    )
                    contents.versions[stream] = version
                latencies.append(time.perf_counter() - started)
                done += 1

        meter = CpuMeter({**cpu, "client": lambda: [os.getpid()]})
        with meter:
            began = time.perf_counter()
            await asyncio.gather(*(worker(c) for c in conns))
            elapsed = time.perf_counter() - began
    finally:
        for c in conns:
            await c.close()
    p50, p99 = _percentiles(latencies)
    return Result(
        "c1",
        f"asyncpg, 1 event/txn, {connections} conns",
        done / elapsed,
        done / elapsed,
        p50,
        p99,
        "txn",
        done,
        cpu=meter.percent,
    )


async def raw_batches(
    url: str, seconds: float, connections: int, contents: Contents, cpu: CpuGroups
) -> Result:
    """(c2) ``unnest`` batches of BATCH rows per transaction, serialised on the head row."""
    import asyncpg

    conns = [await asyncpg.connect(url) for _ in range(connections)]
    latencies: list[float] = []
    done = 0
    try:
        loop = asyncio.get_running_loop()
        stop = loop.time() + seconds

        async def worker(conn: asyncpg.Connection) -> None:
            nonlocal done
            n = 0
            while loop.time() < stop:
                made = []
                for _ in range(BATCH):
                    n += 1
                    made.append(contents.make(n))
                started = time.perf_counter()
                async with conn.transaction():
                    head = await conn.fetchrow(_LOCK_HEAD)
                    assert head is not None
                    position, previous = head["position"], bytes(head["hash"])
                    recorded_at = dt.datetime.now(dt.UTC)
                    cols: list[list[Any]] = [[] for _ in range(9)]
                    versions: dict[str, int] = {}
                    for event_id, stream, kind, date, data in made:
                        position += 1
                        version = versions.get(stream, contents.versions.get(stream, 0)) + 1
                        versions[stream] = version
                        previous = _hash(
                            previous,
                            position,
                            event_id,
                            stream,
                            version,
                            kind,
                            date,
                            recorded_at,
                            data,
                        )
                        for col, value in zip(
                            cols,
                            (
                                position,
                                event_id,
                                stream,
                                version,
                                kind,
                                date,
                                SOURCE_JSON,
                                data,
                                previous,
                            ),
                            strict=True,
                        ):
                            col.append(value)
                    await conn.execute(
                        _INSERT_MANY, *cols[:6], recorded_at, *cols[6:], position, previous
                    )
                    contents.versions.update(versions)
                latencies.append(time.perf_counter() - started)
                done += BATCH

        meter = CpuMeter({**cpu, "client": lambda: [os.getpid()]})
        with meter:
            began = time.perf_counter()
            await asyncio.gather(*(worker(c) for c in conns))
            elapsed = time.perf_counter() - began
    finally:
        for c in conns:
            await c.close()
    p50, p99 = _percentiles(latencies)
    return Result(
        "c2",
        f"asyncpg, unnest {BATCH}/txn, {connections} conn(s)",
        done / elapsed,
        done / elapsed / BATCH,
        p50,
        p99,
        "txn",
        done,
        cpu=meter.percent,
    )


def run_async(coro: Any) -> Any:
    """Run ``coro`` on uvloop; Ctrl-C or SIGTERM cancel it and raise KeyboardInterrupt.

    asyncio.Runner's own Ctrl-C handling does not reach a busy uvloop loop, so the signals are
    handled by the loop itself here, and this script's handlers are put back afterwards.
    """

    async def guarded() -> Any:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        interrupted = False

        def interrupt() -> None:
            nonlocal interrupted
            interrupted = True
            task.cancel()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, interrupt)
        try:
            return await coro
        except asyncio.CancelledError:
            if interrupted:
                raise KeyboardInterrupt from None
            raise
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    import uvloop  # the server's loop too (service/cli.py)

    try:
        return uvloop.run(guarded())
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _raise_interrupt)


# --------------------------------------------------------------------------- (d) minimal app


def minimal_app() -> Any:
    """A Litestar app whose POST /events decodes the envelope like the ledger and stores nothing."""
    from litestar import Litestar, Request, Response, get, post

    from events.decoding import decode_append_body
    from events.records import Receipt

    @post("/events", status_code=201)
    async def append(request: Request[Any, Any, Any]) -> Response[Receipt]:
        envelopes, _ = decode_append_body(await request.body())
        first = envelopes[0]
        receipt = Receipt(
            event_id=first.event_id or uuid.uuid4(),
            stream="company:none",
            stream_version=1,
            position=1,
            recorded_at="2024-01-01T00:00:00.000000Z",
            hash="00" * 32,
        )
        return Response(receipt, status_code=201)

    @get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return Litestar(
        route_handlers=[append, health],
        request_max_body_size=1024 * 1024,
        signature_namespace={"Request": Request, "Response": Response, "Receipt": Receipt},
    )


def serve_minimal(port: int) -> None:
    """Run the minimal app with the server settings `ledger serve` uses."""
    import uvicorn

    from service.connections import HalfCloseProtocol

    uvicorn.run(
        minimal_app(),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http=HalfCloseProtocol,
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=30,
    )


# --------------------------------------------------------------------------- report


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    except OSError:
        nproc = str(os.cpu_count())
    wrk_version = subprocess.run(
        [shutil.which("wrk") or "wrk", "--version"], capture_output=True, text=True
    ).stdout.splitlines()
    return {
        "nproc": nproc,
        "cpu": cpu,
        "python": platform.python_version(),
        "wrk": wrk_version[0].split(" [")[0] if wrk_version else "?",
    }


def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def report(results: dict[str, Result], extra: dict[str, str], args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(140, shutil.get_terminal_size((140, 24)).columns))
    info = Table(title="machine", show_header=False)
    for key, value in extra.items():
        info.add_row(key, value)
    console.print(info)

    analyzed = ", events ANALYZEd after warm-up" if args.analyze else ""
    table = Table(
        title=f"POST /events and baselines ({args.duration:g}s per case, "
        f"{args.connections} wrk connections{analyzed})"
    )
    for name, justify in (
        ("case", "left"),
        ("what", "left"),
        ("events/s", "right"),
        ("req/s", "right"),
        ("p50 ms", "right"),
        ("p99 ms", "right"),
        ("ok", "right"),
        ("non-2xx / errors", "left"),
        ("CPU %", "left"),
    ):
        table.add_column(name, justify=justify, no_wrap=name != "what")  # type: ignore[arg-type]
    for r in results.values():
        failures = ", ".join(f"{k}: {v:,}" for k, v in r.failures.items()) or "none"
        cpu = " ".join(f"{CPU_LABELS.get(k, k)} {v:.0f}" for k, v in r.cpu.items()) or "-"
        table.add_row(
            r.case,
            r.what,
            fmt(r.events_per_s),
            fmt(r.requests_per_s),
            fmt(r.p50_ms, 2),
            fmt(r.p99_ms, 2),
            f"{r.ok:,}",
            failures,
            cpu,
        )
    console.print(table)
    console.print(
        "latency: per request as wrk measures it for (a), (b), (d); per transaction, "
        "measured in Python, for (c).\nok: 201 answers for the HTTP cases (events/s "
        "counts only those), events committed for (c).\nCPU %: user+system time over "
        "the measured interval, 100 = one core: srv = the HTTP server process, pg = all "
        "PostgreSQL processes, wrk = wrk, py = this script (the asyncpg client).\n"
        "(c1) and (c2) serialise on a locked head row like the ledger and chain a "
        "SHA-256 per row in Python; they send no NOTIFY and read no stream versions."
    )
    for r in results.values():
        if r.note:
            console.print(f"({r.case}) {r.note}")

    ratios = Table(title="targets")
    for name in ("ratio", "value", "target", "met"):
        ratios.add_column(name)
    for label, top, bottom, target, as_percent in (
        ("(a) / (c1)", "a", "c1", 3.0, False),
        ("(a) / (d)", "a", "d", 0.5, True),
        ("(b) / (c2)", "b", "c2", 0.4, True),
    ):
        if top not in results or bottom not in results or not results[bottom].events_per_s:
            ratios.add_row(label, "-", "", "not measured")
            continue
        ratio = results[top].events_per_s / results[bottom].events_per_s
        shown = f"{ratio:.0%}" if as_percent else f"{ratio:.2f}x"
        wanted = f"≥ {target:.0%}" if as_percent else f"≥ {target:g}x"
        met = "[green]met[/green]" if ratio >= target else "[red]not met[/red]"
        ratios.add_row(label, shown, wanted, met)
    console.print(ratios)


# --------------------------------------------------------------------------- main


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds per case (default 10)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk")
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="ANALYZE events after each warm-up, as autovacuum eventually does on "
        "a long-running server (a fresh table otherwise has no statistics)",
    )
    parser.add_argument(
        "--py-spy",
        metavar="FILE",
        dest="py_spy",
        help="also record case (a)'s server with py-spy into FILE (raw stacks)",
    )
    parser.add_argument("--serve-minimal", type=int, metavar="PORT", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def ledger_argv() -> list[str]:
    script = Path(sys.executable).parent / "ledger"
    if script.exists():
        return [str(script), "serve"]
    return [sys.executable, "-m", "service.cli", "serve"]


def ledger_server(database_url: str, log: Path, **settings: str) -> Server:
    """`ledger serve` on a free local port against ``database_url``, logging warnings only.

    ``settings`` (environment variables) go on top; this process's own LEDGER_* variables are
    not passed on, so a run measures the settings it names.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update(
        DATABASE_URL=database_url,
        LEDGER_HOST="127.0.0.1",
        LEDGER_PORT=str(port),
        LEDGER_LOG_LEVEL="warning",
        **settings,
    )
    return Server("ledger serve", ledger_argv(), env, port, log)


@contextlib.contextmanager
def py_spy(pid: int, path: str | None, seconds: float) -> Iterator[None]:
    """Record ``pid`` with py-spy (raw collapsed stacks) while the body runs, if ``path``."""
    if not path:
        yield
        return
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(exe).exists():
        raise RuntimeError("--py-spy needs py-spy: pip install py-spy")
    proc = subprocess.Popen(
        [
            exe,
            "record",
            "--pid",
            str(pid),
            "--duration",
            f"{int(seconds)}",
            "--rate",
            "200",
            "--format",
            "raw",
            "--output",
            path,
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_minimal:
        serve_minimal(args.serve_minimal)
        return 0
    if not Path(args.wrk).exists():
        print(f"wrk not found at {args.wrk}", file=sys.stderr)
        return 2

    signal.signal(signal.SIGTERM, _raise_interrupt)
    logs = Path(tempfile.mkdtemp(prefix="ledger-bench-logs-"))
    database = Database()
    servers: list[Server] = []
    results: dict[str, Result] = {}
    started = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {text}", file=sys.stderr, flush=True)

    try:
        say("starting PostgreSQL" if not os.environ.get("DATABASE_URL") else "using DATABASE_URL")
        database.start()
        token, pg_version = asyncio.run(prepare_database(database.url))
        say(f"database {database.name} on PostgreSQL {pg_version}")
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
        auth = {"Authorization": f"Bearer {token}"}
        d = args.duration

        postmaster = asyncio.run(postmaster_pid(database.url))

        def postgres() -> list[int]:
            return postgres_pids(postmaster)

        def http_case(
            case: str,
            what: str,
            server: Server,
            mode: str,
            per_request: int,
            ledger: bool,
            profile: str | None = None,
        ) -> Result:
            assert server.process is not None
            url = f"{server.base_url}/events"
            run_wrk(url, args, mode, WARMUP_SECONDS, auth)
            if ledger and args.analyze:
                asyncio.run(analyze(database.url))
            after = asyncio.run(head_position(database.url)) if ledger else 0
            pid = server.process.pid
            groups = {"server": lambda: [pid], "postgres": postgres}
            with CpuMeter(groups) as meter, py_spy(server.process.pid, profile, d):
                figures = run_wrk(url, args, mode, d, auth)
            result = wrk_result(case, what, figures, per_request)
            result.cpu = {**meter.percent, "wrk": figures["wrk_cpu_percent"]}
            if ledger:
                rows, commits = asyncio.run(groups_since(database.url, after))
                result.note = (
                    f"{rows:,} rows appended in {commits:,} commit groups "
                    f"({rows / max(commits, 1):,.1f} events/group, "
                    f"{commits / (figures['duration_us'] / 1e6):,.0f} commits/s); rows include "
                    "requests still in flight when wrk stopped"
                )
            return result

        # (a) and (b): the ledger itself.
        ledger = ledger_server(database.url, logs / "ledger.log")
        servers.append(ledger)
        ledger.start()
        say(f"(a) single events, {args.connections} connections")
        results["a"] = http_case(
            "a", "ledger, 1 event/request", ledger, "single", 1, True, args.py_spy
        )
        say(f"(b) batches of {BATCH}, {args.connections} connections")
        results["b"] = http_case(
            "b", f"ledger, {BATCH} events/request", ledger, "batch", BATCH, True
        )
        ledger_log = ledger.tail()
        ledger.stop()

        # (c): raw asyncpg into bench_events.
        say(f"(c1) asyncpg, one event per transaction, {C1_CONNECTIONS} connections")
        contents = Contents()  # one per run: it tracks the streams' versions in bench_events
        pg: CpuGroups = {"postgres": postgres}
        results["c1"] = run_async(raw_single(database.url, d, C1_CONNECTIONS, contents, pg))
        tried: list[Result] = []
        for n in C2_CONNECTIONS:
            say(f"(c2) asyncpg, unnest {BATCH} per transaction, {n} connection(s)")
            tried.append(
                run_async(raw_batches(database.url, d / len(C2_CONNECTIONS), n, contents, pg))
            )
        best = max(tried, key=lambda r: r.events_per_s)
        best.note = "best of " + "; ".join(
            f"{r.what.split(', ')[2]}: {r.events_per_s:,.0f} events/s" for r in tried
        )
        results["c2"] = best

        # (d): Litestar's own ceiling.
        port = free_port()
        minimal = Server(
            "minimal app",
            [sys.executable, str(Path(__file__).resolve()), "--serve-minimal", str(port)],
            base_env,
            port,
            logs / "minimal.log",
        )
        servers.append(minimal)
        minimal.start()
        say(f"(d) minimal Litestar app, {args.connections} connections")
        results["d"] = http_case("d", "minimal Litestar, decode only", minimal, "single", 1, False)
        minimal.stop()

        say("done")
        if ledger_log.strip():
            print(f"ledger server log (last lines):\n{ledger_log}", file=sys.stderr)
        info = machine()
        info["wrk"] += f", {args.threads} threads, {args.connections} connections"
        report(
            results,
            {
                **info,
                "PostgreSQL": pg_version,
                "database": "DATABASE_URL"
                if os.environ.get("DATABASE_URL")
                else "embedded (pgserver)",
            },
            args,
        )
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


if __name__ == "__main__":
    raise SystemExit(main())
