"""CPU time of groups of processes (the server, PostgreSQL, wrk, this script), read from /proc."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

# How the tables name each group.
CPU_LABELS = {"server": "srv", "postgres": "pg", "wrk": "wrk", "client": "py"}

CpuGroups = dict[str, Callable[[], list[int]]]


def _stat(pid: int) -> tuple[int, int] | None:
    """Return (ppid, user+system clock ticks) of a process, or None if it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), int(fields[11]) + int(fields[12])


def parent_pid(pid: int) -> int | None:
    """Return a local process's parent, or None when it is not on this machine."""
    stat = _stat(pid)
    return stat[0] if stat is not None else None


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


def this_process() -> list[int]:
    """This script's own pid, as a group (the asyncpg or httpx client)."""
    return [os.getpid()]


def cpu_text(percent: dict[str, float]) -> str:
    """``srv 97 pg 31``: each group's share of one core, as the tables show it."""
    return " ".join(f"{CPU_LABELS.get(k, k)} {v:.0f}" for k, v in percent.items()) or "-"


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
