"""The ledger command line: serve, migrate, verify and manage keys."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import errno
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

import msgspec

from service.cli_errors import COULD_NOT, CommandError, describe_database, guarded
from service.settings import Settings


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command named on the command line."""
    args = _parser().parse_args(argv)
    long_running = args.command in ("serve", "worker")
    return guarded(lambda: _run(args, long_running), debug=args.debug, long_running=long_running)


def _run(args: argparse.Namespace, long_running: bool) -> int:
    settings = Settings.from_env()
    # The service logs at LEDGER_LOG_LEVEL; one-shot commands speak only when something is wrong.
    from service.http.logs import configure

    configure(settings.log_level if long_running else "warning", settings.log_format)
    handler = args.handler
    result: int = handler(settings, args)
    return result


class _Parser(argparse.ArgumentParser):
    """Says a mistake on the command line in one line, and where to read more."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _PlainHelp)  # the subcommands' parsers too
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(COULD_NOT, f"error: {message} (see {self.prog} --help)\n")


class _PlainHelp(argparse.HelpFormatter):
    """Help as plain text: the double backticks of the docstrings are left out."""

    def _format_text(self, text: str) -> str:
        return super()._format_text(text.replace("``", ""))

    def _expand_help(self, action: argparse.Action) -> str:
        return super()._expand_help(action).replace("``", "")


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port from 1 to 65535")
    return int(text)


def _version() -> str:
    try:
        return f"ledger {metadata.version('investment-ledger')}"
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "ledger (not installed)"


def _parser() -> argparse.ArgumentParser:
    from service.keys import SCOPES

    parser = _Parser(prog="ledger", description=__doc__)
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of any failure, for a report"
    )
    commands = parser.add_subparsers(required=True, dest="command")

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", help="address to bind (default LEDGER_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=_port, help="port (default LEDGER_PORT or 8000)")
    serve.add_argument(
        "--demo",
        action="store_true",
        help="load the demo dataset into a fresh embedded database (deleted on exit)",
    )
    serve.set_defaults(handler=_serve)

    commands.add_parser("migrate", help="apply pending migrations").set_defaults(handler=_migrate)
    commands.add_parser(
        "worker",
        help="run the projector and a webhook dispatcher (no HTTP), beside or instead of serve's",
    ).set_defaults(handler=_worker)
    projections = commands.add_parser("projections", help="manage the read models")
    projections.add_subparsers(required=True, dest="projections_command").add_parser(
        "rebuild", help="replay the whole log into new read models and swap them in"
    ).set_defaults(handler=_rebuild)
    verify = commands.add_parser(
        "verify", help="recompute the hash chain, of the database or of an export file"
    )
    verify.add_argument(
        "--file", type=Path, help="an export (JSON lines) to verify offline, with no database"
    )
    verify.add_argument(
        "--previous-hash",
        help="for an export made with --after N: the hash of position N, to check the first line",
    )
    verify.add_argument("--key", help="the ledger's verifier key, to check an export's checkpoint")
    verify.set_defaults(handler=_verify)

    grants = commands.add_parser(
        "grants", help="print the SQL that gives a service role exactly the privileges it needs"
    )
    grants.add_argument("role")
    grants.set_defaults(handler=_grants)

    load = commands.add_parser(
        "import", help="append the envelopes of a JSON-lines file (each with its event_id)"
    )
    load.add_argument("file", type=Path)
    load.add_argument(
        "--workers",
        type=int,
        help="processes that decode and validate lines (default: one per core; 0: none)",
    )
    load.set_defaults(handler=_import)
    export = commands.add_parser(
        "export", help="write every event with its position, recorded_at and hash as JSON lines"
    )
    export.add_argument("--after", type=int, default=0, help="only events after this position")
    export.add_argument("--output", "-o", type=Path, help="a file (default: standard output)")
    export.add_argument(
        "--with-checkpoint",
        action="store_true",
        help="export up to the latest signed checkpoint and write it beside, as FILE.checkpoint",
    )
    export.set_defaults(handler=_export)
    _proof_commands(commands)

    standby = commands.add_parser(
        "standby", help="make and run a hot standby of a primary (for read replicas)"
    )
    standby.add_argument("--primary", required=True, help="the primary's PostgreSQL URL")
    standby.add_argument("--data-dir", required=True, type=Path, help="the standby's data")
    standby.add_argument("--port", required=True, type=int, help="the port it listens on")
    standby.set_defaults(handler=_standby)
    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(
        required=True, dest="keys_command"
    )
    create = keys.add_parser("create", help="create a key and print its token once")
    create.add_argument("--name", required=True)
    create.add_argument("--scopes", required=True, help="comma-separated, of " + ", ".join(SCOPES))
    create.set_defaults(handler=_keys_create)
    keys.add_parser("list", help="list keys (never their tokens)").set_defaults(handler=_keys_list)
    keys.add_parser(
        "public", help="print the verifier key of the ledger's signed checkpoints"
    ).set_defaults(handler=lambda s, a: _proofs().keys_public(s, a))
    revoke = keys.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("key_id")
    revoke.set_defaults(handler=_keys_revoke)
    return parser


def _proofs() -> Any:
    from service import proof_cli

    return proof_cli


def _proof_commands(commands: Any) -> None:
    watch = commands.add_parser(
        "monitor", help="check that the ledger's signed log only grows (token in LEDGER_TOKEN)"
    )
    watch.add_argument("--url", required=True, help="the ledger's base URL")
    watch.add_argument("--key", required=True, help="the ledger's verifier key (pinned)")
    watch.add_argument("--state", required=True, type=Path, help="the checkpoint seen last")
    watch.add_argument("--every", type=float, help="seconds between checks (default: once)")
    watch.set_defaults(handler=lambda s, a: _proofs().monitor(s, a))
    receipt = commands.add_parser("verify-receipt", help="check an event's receipt offline")
    receipt.add_argument("file", type=Path)
    receipt.add_argument("--key", required=True, help="the ledger's verifier key (pinned)")
    receipt.set_defaults(handler=lambda s, a: _proofs().verify_receipt(s, a))


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from service.app import create_app
    from service.http.slow_clients import with_header_timeout

    host, port = args.host or settings.host, args.port or settings.port
    _check_port(host, port)  # before the demo prints a token and a link to another server
    if not args.demo:
        asyncio.run(_reachable(settings))
        _signer(settings, create=True)  # a key that cannot be read is one line, not a lifespan
    else:
        if settings.database_url:
            print("error: --demo starts a database of its own; unset DATABASE_URL", file=sys.stderr)
            return 2
        if (args.host or settings.host) not in ("127.0.0.1", "localhost", "::1"):
            # its token is published in the README: the demo listens on this machine only
            print("error: --demo serves on 127.0.0.1 only", file=sys.stderr)
            return 2
        demo_dir = Path(tempfile.mkdtemp(prefix="ledger-demo-"))
        atexit.register(shutil.rmtree, demo_dir, ignore_errors=True)
        settings = _demo(msgspec.structs.replace(settings, data_dir=demo_dir), args)

    # uvicorn shuts down gracefully on SIGTERM (requests in flight finish, the lifespan commits
    # every queued append), then re-raises the signal; a completed graceful stop exits 0.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http=with_header_timeout(settings.header_timeout_seconds),
        access_log=False,  # service/http/logs.py logs each request, with its id
        log_config=None,  # uvicorn's own lines go through the same (JSON) handler
        log_level=settings.log_level,
        timeout_graceful_shutdown=30,
    )
    return 0


def _check_port(host: str, port: int) -> None:
    """Refuse at once a port another process listens on, or an address not of this machine."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CommandError(
                    f"port {port} on {host} is in use (another ledger serve?); stop it, or "
                    "choose another port with --port or LEDGER_PORT"
                ) from None
            raise CommandError(
                f"cannot listen on {host}:{port} ({exc.strerror}); give an address of this "
                "machine with --host or LEDGER_HOST"
            ) from None


async def _reachable(settings: Settings) -> None:
    """Connect once, so that an unreachable database is one line, before the server starts."""
    from service.database import connect

    async with connect(settings, migrated=False):
        pass


def _demo(settings: Settings, args: argparse.Namespace) -> Settings:
    """Start the embedded database, load the demo into it; return settings pointing at it."""
    from service import demo
    from service.database import database_url

    url = database_url(settings)
    report = asyncio.run(demo.load(url))
    base = f"http://{args.host or settings.host}:{args.port or settings.port}"
    print(
        f"demo: {report.lines} events from public reports loaded into a fresh database.\n"
        f"demo: token (all scopes, this demo only): {demo.DEMO_TOKEN}\n"
        f"demo: explorer at {base}/ui, API documentation at {base}/schema/swagger",
        file=sys.stderr,
        flush=True,
    )
    return msgspec.structs.replace(settings, database_url=url)


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    from events.migrate import migrate
    from service.database import connect
    from service.tree_cli import build_tree

    async def run() -> tuple[list[str], int | None]:
        async with connect(settings, migrated=False) as conn:
            columns = (TextColumn("fact keys"), BarColumn(), TaskProgressColumn())
            with Progress(*columns, TextColumn("{task.completed:,} events"), transient=True) as bar:
                task = bar.add_task("fill", total=None)

                def progress(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                applied = await migrate(conn, progress)
            return applied, await build_tree(conn)

    applied, built = asyncio.run(run())
    print("applied: " + ", ".join(applied) if applied else "the schema is up to date")
    print(
        "a running service is building the Merkle tree"
        if built is None
        else f"added {built:,} events to the Merkle tree"
    )
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from service.bootstrap import database, workers
    from service.webhooks.targets import SystemResolver

    signer = _signer(settings, create=False)  # serve makes the key; a worker only uses one

    async def run() -> None:
        async with (
            database(settings) as db,
            workers(db, settings, SystemResolver(), signer=signer) as tasks,
        ):
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await asyncio.wait(
                [*tasks, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED
            )

    asyncio.run(run())
    return 0


def _signer(settings: Settings, *, create: bool) -> Any:
    """Load (or make) the checkpoint signing key; a key that cannot be used is a CommandError."""
    from service.signing import SigningKeyError, load_signer

    try:
        return load_signer(settings, create=create)
    except SigningKeyError as exc:
        raise CommandError(str(exc)) from None


def _rebuild(settings: Settings, args: argparse.Namespace) -> int:
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    from projections.projector import rebuild
    from service.database import connect

    async def run() -> int:
        async with connect(settings) as conn:
            with Progress(
                TextColumn("replaying the log"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.completed:,} events"),
                TimeRemainingColumn(),
            ) as bar:
                task = bar.add_task("replay", total=None)

                def progress(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                return await rebuild(conn, progress)

    started = time.monotonic()
    done = asyncio.run(run())
    elapsed = time.monotonic() - started
    print(f"rebuilt the read models from {done:,} events in {elapsed:.1f} s")
    return 0


def _verify(settings: Settings, args: argparse.Namespace) -> int:
    from rich.console import Console

    from service import tree_cli

    if args.file is not None:
        code = _verify_file(args.file, args.previous_hash)
        return tree_cli.verify_export_checkpoint(args.file, args.key, code)

    from events.integrity import verify_store
    from service.database import connect

    console = Console(stderr=True)

    async def run() -> int:
        async with connect(settings) as conn:
            with console.status("verifying the hash chain…") as status:
                report = await verify_store(
                    conn, progress=lambda n: status.update(f"verified {n:,} events…")
                )
        if report.intact:
            print(
                f"intact: {report.checked} events, head {report.head_position} {report.head_hash}"
            )
            return 0
        print(f"NOT intact at position {report.first_bad_position}: {report.problem}")
        return 1

    async def check_tree() -> int:
        async with connect(settings) as conn:
            return await tree_cli.check_tree(conn)

    return asyncio.run(run()) or asyncio.run(check_tree())


def _verify_file(path: Path, previous_hash: str | None) -> int:
    from events.transfer import verify_export

    try:
        anchor = bytes.fromhex(previous_hash) if previous_hash else None
        with path.open("rb") as lines:
            report = verify_export(lines, anchor)
    except OSError as exc:
        print(f"error: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return COULD_NOT
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return COULD_NOT
    if not report.intact:
        print(f"NOT intact at line {report.bad_line}: {report.problem}")
        return 1
    if not report.checked:
        print("the file holds no events")
        return 1
    print(
        f"intact: {report.checked} events, positions {report.first_position} to "
        f"{report.last_position}, last hash {report.last_hash}"
    )
    if not report.anchored:
        print(
            f"(the file starts at position {report.first_position}: its first line was taken as "
            "given; pass --previous-hash to check it against the event before it)"
        )
    return 0


def _grants(settings: Settings, args: argparse.Namespace) -> int:
    from events.grants import service_grants

    try:
        print(service_grants(args.role), end="")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _import(settings: Settings, args: argparse.Namespace) -> int:
    from rich.progress import (
        BarColumn,
        Progress,
        ProgressColumn,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    from events.bulk import import_groups
    from events.bulk_decoding import GROUP_BATCHES, decoder_pool, default_workers
    from events.transfer import IMPORT_BATCH, ImportLineError, ImportUnconfirmedError
    from service.bootstrap import database

    class Rate(ProgressColumn):
        """Events per second."""

        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} events/s" if speed else "… events/s")

    try:
        with args.file.open("rb") as counted:
            total = sum(1 for line in counted if line.strip())
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # A file of one group is decoded here: starting worker processes would take longer.
    workers = args.workers if args.workers is not None else default_workers()
    if total <= IMPORT_BATCH * GROUP_BATCHES:
        workers = 0

    async def run() -> Any:
        async with database(settings, pool_size=2) as db:
            with (
                Progress(
                    TextColumn(f"importing {args.file.name}"),
                    BarColumn(),
                    TaskProgressColumn(),
                    TextColumn("{task.completed:,}/{task.total:,} lines"),
                    Rate(),
                    TimeRemainingColumn(),
                ) as bar,
                args.file.open("rb") as lines,
                contextlib.ExitStack() as stack,
            ):
                task = bar.add_task("import", total=total)
                pool = stack.enter_context(decoder_pool(workers)) if workers else None
                async with db.pool.acquire() as one, db.pool.acquire() as other:
                    return await import_groups(
                        (one, other), lines, lambda n: bar.advance(task, n), pool
                    )

    started = time.monotonic()
    try:
        report = asyncio.run(run())
    except ImportUnconfirmedError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        print(
            "the database did not confirm the lines from that one on: they may or may not be "
            "stored; import the file again (it appends only what is missing)",
            file=sys.stderr,
        )
        return 1
    except ImportLineError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        print(
            "nothing of the batch holding that line was appended; batches before it were",
            file=sys.stderr,
        )
        return 1
    elapsed = time.monotonic() - started
    print(
        f"imported {report.lines:,} lines in {elapsed:.1f} s: {report.appended:,} appended, "
        f"{report.already_recorded:,} already recorded"
    )
    return 0


def _export(settings: Settings, args: argparse.Namespace) -> int:
    from rich.console import Console

    if args.with_checkpoint:
        from service.tree_cli import export_with_checkpoint

        return export_with_checkpoint(settings, args)

    from events.log import head_position
    from events.transfer import export_lines
    from service.database import connect

    console = Console(stderr=True)

    async def run(out: Any) -> int:
        count = 0
        async with connect(settings) as conn:
            last = await head_position(conn)
            with console.status("exporting…") as status:
                async for line in export_lines(conn, args.after, last):
                    out.write(line)
                    count += 1
                    if count % 10_000 == 0:
                        status.update(f"exported {count:,} of {max(last - args.after, 0):,}…")
        return count

    if args.output is not None:
        with args.output.open("wb") as out:
            count = asyncio.run(run(out))
    else:
        count = asyncio.run(run(sys.stdout.buffer))
        sys.stdout.flush()
    console.print(f"exported {count:,} events after position {args.after}")
    return 0


def _standby(settings: Settings, args: argparse.Namespace) -> int:
    from service.standby import make_standby, run_standby

    make_standby(args.primary, args.data_dir)
    print(
        f"standby of {args.primary} in {args.data_dir}, answering on 127.0.0.1:{args.port}; "
        f"use postgresql://postgres@127.0.0.1:{args.port}/<database> in LEDGER_READ_REPLICA_URLS",
        flush=True,
    )
    return run_standby(args.data_dir, args.port)


def _keys_create(settings: Settings, args: argparse.Namespace) -> int:
    from service.database import connect
    from service.keys import KeyRequestError, create_key, parse_scopes

    try:
        scopes = parse_scopes(args.scopes)
    except KeyRequestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    async def run() -> tuple[str, str]:
        async with connect(settings) as conn:
            return await create_key(conn, args.name, scopes)

    key_id, token = asyncio.run(run())
    print(
        f"created key {key_id} ({args.name}: {', '.join(scopes)}) in "
        f"{describe_database(settings)}; its token, shown only now:",
        file=sys.stderr,
    )
    print(token)
    return 0


def _keys_list(settings: Settings, args: argparse.Namespace) -> int:
    from service.database import connect
    from service.keys import list_keys

    async def run() -> None:
        async with connect(settings) as conn:
            for key in await list_keys(conn):
                state = f"revoked {key.revoked_at}" if key.revoked_at else "active"
                print(
                    f"{key.key_id}  {key.name}  {','.join(key.scopes)}  {key.created_at}  {state}"
                )

    asyncio.run(run())
    return 0


def _keys_revoke(settings: Settings, args: argparse.Namespace) -> int:
    from service.database import connect
    from service.keys import KeyRequestError, revoke_key

    async def run() -> None:
        async with connect(settings) as conn:
            await revoke_key(conn, args.key_id)

    try:
        asyncio.run(run())
    except KeyRequestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"revoked {args.key_id}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
