"""Append throughput of the ledger against its baselines, all in one run on one PostgreSQL.

    python benchmarks/bench_append.py [--duration 10] [--connections 64]

Cases (benchmarks/README.md says what each measures and how the runs went):

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
import secrets
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from append_raw import BATCH, STREAMS, Contents, Result, create_tables, raw_batches, raw_single
from harness import database as db
from harness.cpu import CpuGroups, CpuMeter, cpu_text, postgres_pids
from harness.processes import Server, clean_env, free_port, run_async
from harness.profile import py_spy
from harness.report import console, facts_table, figures_table, fmt, machine, verdict
from harness.run import Run, run_main
from harness.wrk import Wrk, answers, seconds_of

HERE = Path(__file__).resolve().parent
LUA_SCRIPT = HERE / "append.lua"
C1_CONNECTIONS = 16
C2_CONNECTIONS = (1, 4)
WARMUP_SECONDS = 2


@dataclass
class Setting:
    """What every case of the run shares."""

    args: argparse.Namespace
    run: Run
    wrk: Wrk
    auth: dict[str, str]
    postgres: CpuGroups


# --------------------------------------------------------------------------- HTTP cases


def run_wrk(setting: Setting, url: str, mode: str, seconds: float) -> dict[str, Any]:
    """Run wrk with the append script for ``seconds``; return the figures its done() printed."""
    script_args = [mode, secrets.token_hex(4), str(BATCH), str(STREAMS)]
    return setting.wrk.run(LUA_SCRIPT, url, script_args, seconds, setting.auth)


def wrk_result(case: str, what: str, figures: dict[str, Any], events_per_request: int) -> Result:
    seconds = seconds_of(figures)
    ok, failures = answers(figures, range(201, 202))
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


def http_case(
    setting: Setting,
    case: str,
    what: str,
    server: Server,
    mode: str,
    per_request: int,
    ledger: bool,
    profile: str | None = None,
) -> Result:
    """Warm up, then measure one wrk case against ``server``; count commit groups if ``ledger``."""
    url, database_url = f"{server.base_url}/events", setting.run.database.url
    run_wrk(setting, url, mode, WARMUP_SECONDS)
    if ledger and setting.args.analyze:
        asyncio.run(db.analyze(database_url))
    after = asyncio.run(db.head_position(database_url)) if ledger else 0
    pid, seconds = server.pid, setting.args.duration
    with (
        CpuMeter({"server": lambda: [pid], **setting.postgres}) as meter,
        py_spy(pid, profile, seconds),
    ):
        figures = run_wrk(setting, url, mode, seconds)
    result = wrk_result(case, what, figures, per_request)
    result.cpu = {**meter.percent, "wrk": figures["wrk_cpu_percent"]}
    if ledger:
        rows, commits = asyncio.run(db.groups_since(database_url, after))
        result.note = (
            f"{rows:,} rows appended in {commits:,} commit groups "
            f"({rows / max(commits, 1):,.1f} events/group, "
            f"{commits / seconds_of(figures):,.0f} commits/s); rows include "
            "requests still in flight when wrk stopped"
        )
    return result


def ledger_cases(setting: Setting, results: dict[str, Result]) -> str:
    """(a) and (b) against `ledger serve`; return the tail of its log."""
    args, run = setting.args, setting.run
    ledger = run.ledger("ledger.log")
    ledger.start()
    run.say(f"(a) single events, {args.connections} connections")
    results["a"] = http_case(
        setting, "a", "ledger, 1 event/request", ledger, "single", 1, True, args.py_spy
    )
    run.say(f"(b) batches of {BATCH}, {args.connections} connections")
    results["b"] = http_case(
        setting, "b", f"ledger, {BATCH} events/request", ledger, "batch", BATCH, True
    )
    log = ledger.tail()
    ledger.stop()
    return log


def minimal_case(setting: Setting, results: dict[str, Result]) -> None:
    """(d) the minimal Litestar app under the same load as (a)."""
    run, port = setting.run, free_port()
    argv = [sys.executable, str(Path(__file__).resolve()), "--serve-minimal", str(port)]
    minimal = run.track(Server("minimal app", argv, clean_env(), port, run.logs / "minimal.log"))
    minimal.start()
    run.say(f"(d) minimal Litestar app, {setting.args.connections} connections")
    results["d"] = http_case(
        setting, "d", "minimal Litestar, decode only", minimal, "single", 1, False
    )
    minimal.stop()


# --------------------------------------------------------------------------- raw cases


def raw_cases(setting: Setting, results: dict[str, Result]) -> None:
    """(c1) and (c2): raw asyncpg into bench_events; (c2) keeps the best connection count."""
    run, url, seconds = setting.run, setting.run.database.url, setting.args.duration
    run.say(f"(c1) asyncpg, one event per transaction, {C1_CONNECTIONS} connections")
    contents = Contents()  # one per run: it tracks the streams' versions in bench_events
    results["c1"] = run_async(raw_single(url, seconds, C1_CONNECTIONS, contents, setting.postgres))
    tried: list[Result] = []
    for n in C2_CONNECTIONS:
        run.say(f"(c2) asyncpg, unnest {BATCH} per transaction, {n} connection(s)")
        share = seconds / len(C2_CONNECTIONS)
        tried.append(run_async(raw_batches(url, share, n, contents, setting.postgres)))
    best = max(tried, key=lambda r: r.events_per_s)
    best.note = "best of " + "; ".join(
        f"{r.what.split(', ')[2]}: {r.events_per_s:,.0f} events/s" for r in tried
    )
    results["c2"] = best


# --------------------------------------------------------------------------- (d) minimal app


def minimal_app() -> Any:
    """A Litestar app whose POST /events decodes the envelope like the ledger and stores nothing."""
    import uuid

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

    from service.http.connections import HalfCloseProtocol

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

COLUMNS = (
    ("case", "left"),
    ("what", "left"),
    ("events/s", "right"),
    ("req/s", "right"),
    ("p50 ms", "right"),
    ("p99 ms", "right"),
    ("ok", "right"),
    ("non-2xx / errors", "left"),
    ("CPU %", "left"),
)

LEGEND = (
    "latency: per request as wrk measures it for (a), (b), (d); per transaction, "
    "measured in Python, for (c).\nok: 201 answers for the HTTP cases (events/s "
    "counts only those), events committed for (c).\nCPU %: user+system time over "
    "the measured interval, 100 = one core: srv = the HTTP server process, pg = all "
    "PostgreSQL processes, wrk = wrk, py = this script (the asyncpg client).\n"
    "(c1) and (c2) serialise on a locked head row like the ledger and chain a "
    "SHA-256 per row in Python; they send no NOTIFY and read no stream versions."
)

# (label, numerator, denominator, target, shown as a percentage)
RATIOS = (
    ("(a) / (c1)", "a", "c1", 3.0, False),
    ("(a) / (d)", "a", "d", 0.5, True),
    ("(b) / (c2)", "b", "c2", 0.4, True),
)


def results_table(results: dict[str, Result], args: argparse.Namespace) -> Any:
    analyzed = ", events ANALYZEd after warm-up" if args.analyze else ""
    table = figures_table(
        f"POST /events and baselines ({args.duration:g}s per case, "
        f"{args.connections} wrk connections{analyzed})",
        COLUMNS,
    )
    for r in results.values():
        failures = ", ".join(f"{k}: {v:,}" for k, v in r.failures.items()) or "none"
        table.add_row(
            r.case,
            r.what,
            fmt(r.events_per_s),
            fmt(r.requests_per_s),
            fmt(r.p50_ms, 2),
            fmt(r.p99_ms, 2),
            f"{r.ok:,}",
            failures,
            cpu_text(r.cpu),
        )
    return table


def ratios_table(results: dict[str, Result]) -> Any:
    from harness.report import targets_table

    ratios = targets_table("ratio", "value", "target", "met")
    for label, top, bottom, target, as_percent in RATIOS:
        if top not in results or bottom not in results or not results[bottom].events_per_s:
            ratios.add_row(label, "-", "", "not measured")
            continue
        ratio = results[top].events_per_s / results[bottom].events_per_s
        shown = f"{ratio:.0%}" if as_percent else f"{ratio:.2f}x"
        wanted = f"≥ {target:.0%}" if as_percent else f"≥ {target:g}x"
        ratios.add_row(label, shown, wanted, verdict(ratio >= target))
    return ratios


def report(results: dict[str, Result], extra: dict[str, str], args: argparse.Namespace) -> None:
    out = console(140)
    out.print(facts_table("machine", extra))
    out.print(results_table(results, args))
    out.print(LEGEND)
    for r in results.values():
        if r.note:
            out.print(f"({r.case}) {r.note}")
    out.print(ratios_table(results))


# --------------------------------------------------------------------------- main


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


def prepare(run: Run, args: argparse.Namespace) -> tuple[Setting, str]:
    """Start the database, migrate it, add the baseline tables and a key; return the setting."""
    run.start_database()
    url = run.database.url
    pg_version = asyncio.run(db.migrate(url))
    asyncio.run(create_tables(url))
    token = asyncio.run(db.create_token(url, "bench", ["events:write"]))
    run.say(f"database {run.database.name} on PostgreSQL {pg_version}")
    postmaster = asyncio.run(db.postmaster_pid(url))
    setting = Setting(
        args=args,
        run=run,
        wrk=Wrk(args.wrk, args.threads, args.connections),
        auth={"Authorization": f"Bearer {token}"},
        postgres={"postgres": lambda: postgres_pids(postmaster)},
    )
    return setting, pg_version


def measure(run: Run, args: argparse.Namespace) -> int:
    setting, pg_version = prepare(run, args)
    results: dict[str, Result] = {}
    ledger_log = ledger_cases(setting, results)
    raw_cases(setting, results)
    minimal_case(setting, results)
    run.say("done")
    if ledger_log.strip():
        print(f"ledger server log (last lines):\n{ledger_log}", file=sys.stderr)
    info = machine()
    info["wrk"] += f", {args.threads} threads, {args.connections} connections"
    report(results, {**info, "PostgreSQL": pg_version, "database": db.describe()}, args)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_minimal:
        serve_minimal(args.serve_minimal)
        return 0
    if not Path(args.wrk).exists():
        print(f"wrk not found at {args.wrk}", file=sys.stderr)
        return 2
    return run_main(lambda run: measure(run, args))


if __name__ == "__main__":
    raise SystemExit(main())
