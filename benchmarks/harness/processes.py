"""Server subprocesses (`ledger serve`, helpers), free ports, and running coroutines on uvloop."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any


def free_port() -> int:
    """Return a TCP port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, timeout: float = 10) -> None:
    """Wait until something accepts connections on ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def rss_mb(pid: int) -> float:
    """Return a process's resident memory in MB (NaN when /proc does not say)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    """An HTTP server subprocess in its own session (so Ctrl-C reaches only us; we stop it)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int, log: Path):
        self.name, self.argv, self.env, self.port, self.log = name, argv, env, port, log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} is not running"
        return self.process.pid

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
            if self._healthy():
                return
            try:  # wait a moment on the process itself: it either keeps starting or exits
                self.process.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                continue
            raise RuntimeError(f"{self.name} exited at start:\n{self.tail()}")
        raise RuntimeError(f"{self.name} did not answer /health in {timeout}s:\n{self.tail()}")

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/health", timeout=1) as answer:  # noqa: S310
                return bool(answer.status == 200)
        except OSError:
            return False

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


def ledger_argv() -> list[str]:
    """The command that runs `ledger serve` from this interpreter's environment."""
    script = Path(sys.executable).parent / "ledger"
    if script.exists():
        return [str(script), "serve"]
    return [sys.executable, "-m", "service.cli", "serve"]


def ledger_command(*args: str) -> list[str]:
    """The command that runs `ledger <args>` from this interpreter's environment."""
    return [*ledger_argv()[:-1], *args]


def clean_env() -> dict[str, str]:
    """This process's environment without LEDGER_* variables, so a run measures what it names."""
    return {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}


def ledger_server(database_url: str, log: Path, **settings: str) -> Server:
    """`ledger serve` on a free local port against ``database_url``, logging warnings only.

    ``settings`` (environment variables) go on top of :func:`clean_env`.
    """
    port = free_port()
    env = clean_env()
    env.update(
        DATABASE_URL=database_url,
        LEDGER_HOST="127.0.0.1",
        LEDGER_PORT=str(port),
        LEDGER_LOG_LEVEL="warning",
        **settings,
    )
    return Server("ledger serve", ledger_argv(), env, port, log)


def raise_interrupt(signum: int, frame: Any) -> None:
    """A signal handler that turns SIGTERM into KeyboardInterrupt, so cleanup runs."""
    raise KeyboardInterrupt


def run_async(coro: Any) -> Any:
    """Run ``coro`` on uvloop; Ctrl-C or SIGTERM cancel it and raise KeyboardInterrupt.

    asyncio.Runner's own Ctrl-C handling does not reach a busy uvloop loop, so the signals are
    handled by the loop itself here, and the script's handlers are put back afterwards.
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
        signal.signal(signal.SIGTERM, raise_interrupt)
