"""Point-in-time reads and replay of the ledger against raw baselines, in one run on one PostgreSQL.

    python benchmarks/bench_queries.py [--events 1000000] [--companies 10000] [--duration 10]
                                       [--reports 3]

With --reports N (N > 1) the whole run is made twice, each on a fresh database of the same size
in events: first with every fact reported once, then with every fact reported N times by
different sources (the second report agreeing with the first, the others disagreeing on one
field), and a last table compares (A)'s p99 and (C)'s rate between the two.

Steps (benchmarks/README.md says what each measures and how the runs went):

  load  N events over C company streams (~N/C events each) plus ~20 export-rule streams, built as
        valid envelopes in Python and appended through the store's batched path
        (events.writer.GroupCommitter, in process: batches of --batch events per append call,
        --load-concurrency calls in flight); then ANALYZE events
  warm  one request per company, so that the server holds every stream decoded in memory as
        it would once it has served for a while (the stream cache); --no-warm skips it
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
import datetime as dt
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import database as db
from harness.cpu import CpuGroups, CpuMeter, cpu_text, postgres_pids
from harness.processes import Server, rss_mb, run_async
from harness.profile import py_spy, summarize_py_spy
from harness.report import console, facts_table, figures_table, fmt, machine, verdict
from harness.run import Run, run_main
from harness.wrk import Wrk, answers, seconds_of
from query_data import COMPANY_PREFIX, FIRST_DAY, LAST_DAY, RULES, Figure, LogPlan
from query_load import after_load, load
from query_raw import raw_replay, raw_streams, rebuild_case
from query_server import sample_answer, stream_reads, wait_caught_up, warm_streams

HERE = Path(__file__).resolve().parent
LUA_SCRIPT = HERE / "queries.lua"
WARMUP_SECONDS = 2


@dataclass
class Setting:
    """What every case of the run shares."""

    args: argparse.Namespace
    run: Run
    wrk: Wrk
    token: str
    postgres: CpuGroups
    figures: dict[str, Figure]
    notes: list[str]


# --------------------------------------------------------------------------- (A): HTTP


def run_wrk(setting: Setting, url: str, seconds: float, connections: int) -> dict[str, Any]:
    """Run wrk with queries.lua for ``seconds``; return the figures its done() printed."""
    days = (LAST_DAY - FIRST_DAY).days + 1
    first = int(dt.datetime.combine(FIRST_DAY, dt.time(), dt.UTC).timestamp())
    script_args = [str(setting.args.companies), COMPANY_PREFIX, str(first), str(days)]
    auth = {"Authorization": f"Bearer {setting.token}"}
    return setting.wrk.run(LUA_SCRIPT, url, script_args, seconds, auth, connections)


def http_case(
    setting: Setting,
    server: Server,
    case: str = "A",
    connections: int | None = None,
    seconds: float | None = None,
) -> tuple[Figure, str]:
    """Warm up, then measure GET /companies/{id}?as_of=… with wrk; py-spy (A) if asked."""
    args = setting.args
    connections = connections or args.connections
    seconds = seconds or args.duration
    profile = args.py_spy if case == "A" else None
    run_wrk(setting, server.base_url, WARMUP_SECONDS, connections)
    pid = server.pid
    with (
        CpuMeter({"server": lambda: [pid], **setting.postgres}) as meter,
        py_spy(pid, profile, seconds),
    ):
        figures = run_wrk(setting, server.base_url, seconds, connections)
    spied = summarize_py_spy(Path(profile), seconds_of(figures)) if profile else ""
    figure = http_figure(case, connections, figures)
    figure.cpu = {**meter.percent, "wrk": figures["wrk_cpu_percent"]}
    return figure, spied


def http_figure(case: str, connections: int, figures: dict[str, Any]) -> Figure:
    seconds = seconds_of(figures)
    ok, failures = answers(figures, range(200, 300))
    return Figure(
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
        note=f"mean {figures['mean_us'] / 1000:.2f} ms, p90 {figures['p90_us'] / 1000:.2f} ms, "
        f"max {figures['max_us'] / 1000:.1f} ms, "
        f"{figures['bytes'] / max(figures['requests'], 1):,.0f} bytes/response",
    )


# --------------------------------------------------------------------------- report

COLUMNS = (
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
)

LEGEND = (
    "latency: per request as wrk measures it for (A); per stream read (query + decode), "
    "measured in Python, for (B).\nCPU %: user+system time over the measured interval, "
    "100 = one core: srv = `ledger serve`, pg = all PostgreSQL processes, wrk = wrk, "
    "py = this script."
)


def figures_rows(figures: dict[str, Figure]) -> Any:
    table = figures_table("point-in-time reads and replay, one run, one PostgreSQL", COLUMNS)
    for f in figures.values():
        failures = ", ".join(f"{k}: {v:,}" for k, v in f.failures.items()) or "none"
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
            cpu_text(f.cpu),
        )
    return table


def targets(figures: dict[str, Figure]) -> Any:
    from harness.report import targets_table

    table = targets_table("figure", "value", "target", "met")

    def row(label: str, value: float | None, shown: str, wanted: str, ok: bool) -> None:
        if value is None:
            table.add_row(label, "-", wanted, "not measured")
            return
        table.add_row(label, shown, wanted, verdict(ok))

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
        table.add_row("(C) ÷ (D) (no target)", f"{c.rate / d.rate:.0%}", "-", "-")
    return table


def report(
    figures: dict[str, Figure], info: dict[str, str], kinds: dict[str, int], notes: list[str]
) -> None:
    out = console(150)
    facts = facts_table("machine and data", info)
    facts.add_row("event types", ", ".join(f"{k} {v:,}" for k, v in sorted(kinds.items())))
    out.print(facts)
    out.print(figures_rows(figures))
    out.print(LEGEND)
    for f in figures.values():
        if f.note:
            out.print(f"({f.case}) {f.note}")
    for note in notes:
        out.print(note)
    out.print(targets(figures))


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
        "--stream-cache-bytes",
        type=int,
        help="the server's LEDGER_STREAM_CACHE_BYTES (default: the service's own, 512 MiB)",
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
    parser.add_argument(
        "--reports",
        type=int,
        default=1,
        help="reports of every fact; above 1, also run with one report and compare (1)",
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


def prepare(run: Run, args: argparse.Namespace) -> tuple[Setting, LogPlan, dict[str, Any]]:
    """Start and migrate the database, load the log, ANALYZE it; return the setting."""
    run.start_database()
    url = run.database.url
    asyncio.run(db.migrate(url))
    postmaster = run_async(db.postmaster_pid(url))
    postgres: CpuGroups = {"postgres": lambda: postgres_pids(postmaster)}
    figures: dict[str, Figure] = {}
    notes: list[str] = []
    run.say(
        f"database {run.database.name}; planning {args.events:,} events "
        f"over {args.companies:,} companies"
    )
    plan = LogPlan(args.events, args.companies, reports=args.reports)
    figures["load"], _ = run_async(load(url, plan, args.batch, args.load_concurrency, postgres))
    run.say(f"loaded in {figures['load'].seconds:.1f}s; ANALYZE events")
    facts = run_async(after_load(url))
    notes.append(
        f"(load) ANALYZE events took {facts['analyze_seconds']:.1f}s; the log holds "
        f"{facts['rows']:,} events in {facts['streams']:,} streams (head {facts['head']:,})"
    )
    if facts["rows"] != args.events:
        notes.append(f"[red](load) {args.events - facts['rows']:,} events were refused[/red]")
    token = asyncio.run(db.create_token(url, "bench-queries", ["events:read"]))
    wrk = Wrk(args.wrk, args.threads, args.connections)
    return Setting(args, run, wrk, token, postgres, figures, notes), plan, facts


def cached_cases(setting: Setting, head: int) -> str:
    """Start `ledger serve`, let it catch up and warm it; (A) and (A1); return its log's tail."""
    args, run, figures, notes = setting.args, setting.run, setting.figures, setting.notes
    cache_env = {
        variable: str(value)
        for variable, value in (
            ("LEDGER_STREAM_CACHE_EVENTS", args.stream_cache_events),
            ("LEDGER_STREAM_CACHE_BYTES", args.stream_cache_bytes),
        )
        if value is not None
    }
    ledger = run.ledger("ledger.log", LEDGER_POOL_SIZE=str(args.pool_size), **cache_env)
    run.say("starting ledger serve")
    ledger.start()
    figures["proj"] = wait_caught_up(ledger, head, timeout=1800)
    run.say(sample_answer(ledger, setting.token, args.companies))
    if args.warm:
        run.say(f"asking once for each of the {args.companies:,} companies (streams held)")
        warmed = run_async(warm_streams(ledger, setting.token, args.companies))
        notes.append(f"(warm) one request per company took {warmed:.1f}s")
    before = stream_reads(ledger)
    run.say(
        f"(A) GET /companies/{{id}}?as_of=…, {args.connections} connections, {args.duration:g}s"
    )
    figures["A"], spied = http_case(setting, ledger)
    if spied:
        notes.append(spied)
    notes.append(held_note(before, stream_reads(ledger), rss_mb(ledger.pid)))
    if args.latency_probe:
        run.say(f"(A1) the same from 1 connection, {args.latency_probe:g}s")
        figures["A1"], _ = http_case(setting, ledger, "A1", 1, args.latency_probe)
    log = ledger.tail()
    ledger.stop()
    return log


def held_note(before: dict[str, float], after: dict[str, float], rss: float) -> str:
    hits = after.get("hit", 0) - before.get("hit", 0)
    misses = after.get("miss", 0) - before.get("miss", 0)
    return (
        f"(A) streams held in memory: {after.get('events', 0):,.0f} events, server RSS "
        f"{rss:,.0f} MB; during (A) and its warm-up {hits:,.0f} reads found "
        f"their stream held, {misses:,.0f} read it whole"
    )


def uncached_case(setting: Setting, head: int) -> None:
    """(A0): (A) against a server with the stream cache off."""
    args, run = setting.args, setting.run
    cold = run.ledger(
        "ledger-uncached.log",
        LEDGER_POOL_SIZE=str(args.pool_size),
        LEDGER_STREAM_CACHE_EVENTS="0",
    )
    run.say("(A0) the same with LEDGER_STREAM_CACHE_EVENTS=0 (every stream read whole)")
    cold.start()
    wait_caught_up(cold, head, timeout=1800)
    setting.figures["A0"], _ = http_case(setting, cold, "A0")
    cold.stop()


def raw_cases(setting: Setting, head: int) -> None:
    """(B), then (C) and (D) with no server running."""
    args, run, url, pg = setting.args, setting.run, setting.run.database.url, setting.postgres
    run.say(f"(B) raw stream reads, {args.raw_connections} connections, {args.duration:g}s")
    setting.figures["B"] = run_async(
        raw_streams(url, args.duration, args.raw_connections, args.companies, pg)
    )
    run.say("(C) rebuilding the read models")
    setting.figures["C"] = run_async(rebuild_case(url, head, pg))
    run.say("(D) raw replay of the whole log")
    setting.figures["D"] = run_async(raw_replay(url, pg))


def run_facts(setting: Setting, plan: LogPlan, facts: dict[str, Any]) -> dict[str, str]:
    """The machine and the data, for the first table."""
    args = setting.args
    info = machine()
    info["wrk"] += f", {args.threads} threads, {args.connections} connections"
    info.update(
        {
            "PostgreSQL": str(facts["version"]),
            "database": db.describe(),
            "shared_buffers": str(facts["shared_buffers"]),
            "events table": f"{facts['rows']:,} rows, heap {facts['table_size']}, "
            f"indexes {facts['index_size']}",
            "companies": f"{args.companies:,} "
            f"(~{args.events / args.companies:,.0f} events each) + {RULES} export-rule "
            f"streams ({sum(len(r) for r in plan.rule_events)} events)",
            "whole run": f"{setting.run.elapsed():.0f} s",
        }
    )
    return info


def measure(run: Run, args: argparse.Namespace, kept: dict[int, dict[str, Figure]]) -> int:
    setting, plan, facts = prepare(run, args)
    ledger_log = cached_cases(setting, facts["head"])
    if args.uncached:
        uncached_case(setting, facts["head"])
    raw_cases(setting, facts["head"])
    run.say("done")
    if ledger_log.strip():
        print(f"ledger server log (last lines):\n{ledger_log}", file=sys.stderr)
    info = run_facts(setting, plan, facts)
    info["reports of each fact"] = str(args.reports)
    report(setting.figures, info, dict(plan.kinds), setting.notes)
    kept[args.reports] = setting.figures
    return 0


def compare(kept: dict[int, dict[str, Figure]], reports: int) -> None:
    """The reports' cost: (A)'s p99 and (C)'s rate with one report of each fact and with N."""
    from harness.report import targets_table

    table = targets_table("figure", "1 report", f"{reports} reports", "change", "target")
    one, many = kept[1], kept[reports]
    p99 = (one["A"].p99_ms or 0, many["A"].p99_ms or 0)
    change = p99[1] / p99[0] - 1 if p99[0] else 0
    table.add_row(
        "(A) HTTP p99, ms", f"{p99[0]:.2f}", f"{p99[1]:.2f}", f"{change:+.0%}", "≤ 10 ms, ≤ +20%"
    )
    rates = (one["C"].rate, many["C"].rate)
    table.add_row(
        "(C) rebuild, events/s",
        f"{rates[0]:,.0f}",
        f"{rates[1]:,.0f}",
        f"{rates[1] / rates[0] - 1:+.0%}" if rates[0] else "-",
        "≥ 100,000",
    )
    table.add_row("(A) req/s", f"{one['A'].rate:,.0f}", f"{many['A'].rate:,.0f}", "-", "-")
    console(150).print(table)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not Path(args.wrk).exists():
        print(f"wrk not found at {args.wrk}", file=sys.stderr)
        return 2
    kept: dict[int, dict[str, Figure]] = {}
    counts = [1, args.reports] if args.reports > 1 else [1]
    for reports in counts:
        code = run_main(lambda run, n=reports: measure(run, copy_with(args, n), kept))
        if code:
            return code
    if len(counts) > 1:
        compare(kept, args.reports)
    return 0


def copy_with(args: argparse.Namespace, reports: int) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), "reports": reports})


if __name__ == "__main__":
    raise SystemExit(main())
