"""`ledger import` against raw COPY and the Python chain rate, with verify, export and rebuild.

    python benchmarks/bench_import.py [--events 1000000] [--companies 10000] [--workers N]

Cases, in one run against one fresh database:

  (a) `ledger import` of a JSON-lines file of --events envelopes (the log bench_queries.py
      loads: companies, rounds, valuations, approvals, export rules, 3% corrections), each
      with its event_id: events/s from the command's start to its exit
  (b) raw COPY of the same lines, one `json` column, by asyncpg's binary COPY: the database's
      ceiling for storing that many bytes
  (b2) COPY of the same events, decoded and planned beforehand, into a table shaped and
      indexed like the log, 10,000 per transaction: the database's ceiling for the log itself
  (c) the Python chain rate: this process encoding each (already decoded) envelope
      canonically and chaining SHA-256 hashes over them, nothing else
  (d) `ledger verify`, `ledger export`, `ledger verify --file` and `ledger projections
      rebuild` over the imported log, events/s each

The load average is printed before and after: the figures of a loaded machine are low, the
ratios of one run stay fair. This script prints figures; it asserts nothing about timing.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import subprocess
import time
from typing import Any

from harness import database as db
from harness.processes import clean_env, ledger_command
from harness.report import console, facts_table, figures_table, fmt, machine, targets_table, verdict
from harness.run import Run, run_main
from import_data import copy_planned, write_lines

CHAIN_SAMPLE = 200_000  # envelopes (c) encodes: enough for a steady rate


def chain_rate(path: Any, limit: int) -> float:
    """Events/s at which this process encodes envelopes canonically and chains them."""
    import datetime as dt

    from events.chain import GENESIS, canonical_json, chain, event_bytes
    from events.decoding import decode_append_body

    with path.open("rb") as lines:
        envelopes = [decode_append_body(line)[0][0] for line in itertools.islice(lines, limit)]
    recorded_at = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    digest = GENESIS
    for position, envelope in enumerate(envelopes, start=1):
        metadata = envelope.metadata
        canonical = event_bytes(
            position=position,
            event_id=envelope.event_id,
            stream=f"company:{position % 1000}",
            stream_version=position,
            type=envelope.type,
            schema_version=1,
            effective_date=envelope.effective_date,
            recorded_at=recorded_at,
            source=canonical_json(envelope.source),
            data=canonical_json(envelope.data),
            metadata=canonical_json(metadata) if metadata is not None else None,
        )
        digest = chain(digest, canonical)
    return len(envelopes) / (time.perf_counter() - started)


async def raw_copy(url: str, path: Any) -> float:
    """Events/s of a binary COPY of the file's lines into a one-column `json` table."""
    with path.open("rb") as lines:
        records = [(line.decode().rstrip("\n"),) for line in lines]
    async with db.connected(url) as conn:
        await conn.execute("CREATE TABLE bench_raw_lines (line json NOT NULL)")
        started = time.perf_counter()
        await conn.copy_records_to_table("bench_raw_lines", records=records, columns=["line"])
        elapsed = time.perf_counter() - started
        await conn.execute("DROP TABLE bench_raw_lines")
    return len(records) / elapsed


def timed(run: Run, *args: str) -> tuple[float, str]:
    """Run a `ledger` command against the run's database; return its seconds and its output."""
    env = {**clean_env(), "DATABASE_URL": run.database.url}
    started = time.perf_counter()
    result = subprocess.run(ledger_command(*args), env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"ledger {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return elapsed, result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def measure(run: Run, args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {"load_before": load()}
    run.start_database()
    figures["postgres"] = asyncio.run(db.migrate(run.database.url))
    path = run.logs / "import.jsonl"
    run.say(f"writing {args.events:,} envelopes")
    figures["kinds"] = write_lines(path, args.events, args.companies)
    run.say("(c) the Python chain rate")
    figures["c"] = chain_rate(path, min(args.events, CHAIN_SAMPLE))
    run.say("(b) raw COPY of the lines")
    figures["b"] = asyncio.run(raw_copy(run.database.url, path))
    run.say("(b2) COPY of the planned events into a table like the log")
    figures["b2"] = asyncio.run(copy_planned(run.database.url, path))
    run.say("(a) ledger import")
    workers = () if args.workers is None else ("--workers", str(args.workers))
    seconds, said = timed(run, "import", str(path), *workers)
    figures["a"], figures["a_said"] = args.events / seconds, said
    export = run.logs / "export.jsonl"
    for case, command in (
        ("verify", ("verify",)),
        ("export", ("export", "-o", str(export))),
        ("verify --file", ("verify", "--file", str(export))),
        ("rebuild", ("projections", "rebuild")),
    ):
        run.say(f"(d) ledger {case}")
        figures[case] = args.events / timed(run, *command)[0]
    figures["load_after"] = load()
    return figures


def report(figures: dict[str, Any], args: argparse.Namespace) -> None:
    out = console(120)
    out.print(
        facts_table(
            "machine",
            {
                **machine(),
                "postgres": figures["postgres"],
                "load average (1, 5, 15 min)": f"before {figures['load_before']}, "
                f"after {figures['load_after']}",
            },
        )
    )
    table = figures_table(f"{args.events:,} events", [("case", "left"), ("events/s", "right")])
    table.add_row("(a) ledger import", fmt(figures["a"]))
    table.add_row("(b) raw COPY of the same lines", fmt(figures["b"]))
    table.add_row("(b2) COPY of the planned events into the log's shape", fmt(figures["b2"]))
    table.add_row("(c) Python canonical encoding + chain", fmt(figures["c"]))
    for case in ("verify", "export", "verify --file", "rebuild"):
        table.add_row(f"(d) ledger {case}", fmt(figures[case]))
    out.print(table)
    targets = targets_table("ratio", "value", "target", "")
    a_c = figures["a"] / figures["c"]
    targets.add_row("(a) / (c)", f"{a_c:.0%}", ">= 50%", verdict(a_c >= 0.5))
    targets.add_row("(a) / (b)", f"{figures['a'] / figures['b']:.1%}", "", "")
    targets.add_row("(a) / (b2)", f"{figures['a'] / figures['b2']:.0%}", "", "")
    out.print(targets)
    out.print(f"ledger import said: {figures['a_said']}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--companies", type=int, help="default: one per 100 events")
    parser.add_argument("--workers", type=int, help="`ledger import --workers` (its default)")
    args = parser.parse_args(argv)
    args.companies = args.companies or max(1, args.events // 100)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def body(run: Run) -> int:
        report(measure(run, args), args)
        return 0

    return run_main(body)


if __name__ == "__main__":
    raise SystemExit(main())
