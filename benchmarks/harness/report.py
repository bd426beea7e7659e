"""Figures into words: percentiles, numbers, the machine's description and rich tables."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


def fmt(value: float | None, digits: int = 0) -> str:
    """A figure with thousands separators, or ``-`` when it was not measured."""
    return "-" if value is None else f"{value:,.{digits}f}"


def percentiles(latencies: list[float]) -> tuple[float | None, float | None]:
    """Return the p50 and p99 of latencies in seconds, in milliseconds."""
    if not latencies:
        return None, None
    ordered = sorted(latencies)
    return (
        ordered[len(ordered) // 2] * 1000,
        ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    )


def verdict(ok: bool) -> str:
    """``met`` in green or ``not met`` in red, for a targets table."""
    return "[green]met[/green]" if ok else "[red]not met[/red]"


def _cpu_model() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return cpu


def machine() -> dict[str, str]:
    """The machine's cores, CPU, Python and wrk versions."""
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    except OSError:
        nproc = str(os.cpu_count())
    wrk_version = subprocess.run(
        [shutil.which("wrk") or "wrk", "--version"], capture_output=True, text=True
    ).stdout.splitlines()
    return {
        "nproc": nproc,
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "wrk": wrk_version[0].split(" [")[0] if wrk_version else "?",
    }


def console(width: int) -> Any:
    """A console at least ``width`` wide (wider when the terminal is)."""
    from rich.console import Console

    return Console(width=max(width, shutil.get_terminal_size((width, 24)).columns))


_stderr: Any = None


def stderr_console() -> Any:
    """The console progress bars draw on (stderr, so the tables on stdout stay clean)."""
    global _stderr
    if _stderr is None:
        from rich.console import Console

        _stderr = Console(stderr=True)
    return _stderr


def facts_table(title: str, facts: Mapping[str, str]) -> Any:
    """A two-column table of named facts, without a header."""
    from rich.table import Table

    table = Table(title=title, show_header=False)
    for key, value in facts.items():
        table.add_row(key, value)
    return table


def figures_table(title: str, columns: Iterable[tuple[str, str]]) -> Any:
    """An empty table with ``(name, justify)`` columns; only ``what`` may wrap."""
    from rich.table import Table

    table = Table(title=title)
    for name, justify in columns:
        table.add_column(name, justify=justify, no_wrap=name != "what")  # type: ignore[arg-type]
    return table


def targets_table(*columns: str) -> Any:
    """An empty targets table."""
    from rich.table import Table

    table = Table(title="targets")
    for name in columns:
        table.add_column(name)
    return table
