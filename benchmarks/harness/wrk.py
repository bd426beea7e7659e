"""Running wrk with a Lua script whose done() prints one ``BENCH_JSON {...}`` line of figures."""

from __future__ import annotations

import json
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Wrk:
    """Where wrk is and how it loads the server: threads and connections."""

    program: str
    threads: int
    connections: int

    def run(
        self,
        script: Path,
        url: str,
        script_args: list[str],
        seconds: float,
        headers: dict[str, str],
        connections: int | None = None,
    ) -> dict[str, Any]:
        """Run wrk with ``script`` for ``seconds``; return the figures its done() printed."""
        connections = connections or self.connections
        argv = [self.program, "-t", str(min(self.threads, connections)), "-c", str(connections)]
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


def answers(figures: dict[str, Any], ok: range) -> tuple[int, dict[str, int]]:
    """Return (answers with a status in ``ok``, every other status and socket error counted)."""
    statuses = {int(k): v for k, v in figures["statuses"].items()}
    good = sum(v for k, v in statuses.items() if k in ok)
    failures = {str(k): v for k, v in sorted(statuses.items()) if k not in ok}
    failures.update({f"socket {k}": v for k, v in figures["errors"].items() if v and k != "status"})
    return good, failures


def seconds_of(figures: dict[str, Any]) -> float:
    """The run's measured duration in seconds."""
    return float(figures["duration_us"]) / 1e6
