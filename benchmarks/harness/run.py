"""One benchmark run: its database, servers, logs and clock, and cleanup however it ends."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from harness.database import Database
from harness.processes import Server, ledger_server, raise_interrupt


class Run:
    """What a run owns; everything it starts is stopped by :func:`run_main`."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.logs = Path(tempfile.mkdtemp(prefix="ledger-bench-logs-"))
        self.database = Database()
        self.servers: list[Server] = []

    def say(self, text: str) -> None:
        """Print progress on stderr with the seconds since the run began."""
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", file=sys.stderr, flush=True)

    def start_database(self) -> None:
        self.say(
            "starting PostgreSQL" if not os.environ.get("DATABASE_URL") else "using DATABASE_URL"
        )
        self.database.start()

    def ledger(self, log_name: str, **settings: str) -> Server:
        """A `ledger serve` against the run's database (not started yet), stopped at the end."""
        return self.track(ledger_server(self.database.url, self.logs / log_name, **settings))

    def track(self, server: Server) -> Server:
        self.servers.append(server)
        return server

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        self.database.close()
        shutil.rmtree(self.logs, ignore_errors=True)


def run_main(body: Callable[[Run], int]) -> int:
    """Run ``body`` with a fresh Run; Ctrl-C or SIGTERM end it cleanly with status 130."""
    signal.signal(signal.SIGTERM, raise_interrupt)
    run = Run()
    try:
        return body(run)
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip cleanup
        run.close()
        signal.signal(signal.SIGINT, signal.default_int_handler)
