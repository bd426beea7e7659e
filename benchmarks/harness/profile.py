"""Recording a server with py-spy while a case runs, and saying where its samples fall."""

from __future__ import annotations

import collections
import contextlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

PROJECT_PACKAGES = frozenset({"events", "projections", "service"})


@contextlib.contextmanager
def py_spy(pid: int, path: str | None, seconds: float) -> Iterator[None]:
    """Record ``pid`` with py-spy (raw collapsed stacks) while the body runs, if ``path``."""
    if not path:
        yield
        return
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(exe).exists():
        raise RuntimeError("--py-spy needs py-spy: pip install py-spy")
    argv = [exe, "record", "--pid", str(pid), "--duration", f"{int(seconds)}", "--rate", "200"]
    argv += ["--format", "raw", "--output", path, "--nonblocking"]
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
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


def summarize_py_spy(path: Path, seconds: float, rate: int = 200, top: int = 16) -> str:
    """Say where the server's samples fall: the project's functions (inclusive) and, for the
    frame on top of each stack, the package it belongs to."""
    if not path.exists():
        return f"py-spy wrote nothing to {path}"
    inclusive, own, total = _count(path)
    if not total:
        return "py-spy recorded no samples"
    lines = [
        f"py-spy on (A)'s server: {total:,} samples at {rate}/s over {seconds:g}s "
        f"(~{100 * total / (rate * seconds):.0f}% of one core in Python-visible frames); "
        "shares of those samples:",
        "  the project's functions, inclusive (the function and what it calls):",
    ]
    for name, count in inclusive.most_common(top):
        lines.append(f"    {100 * count / total:5.1f}%  {name}")
    lines.append("  where the top frame is (self time by package):")
    for name, count in own.most_common(top):
        lines.append(f"    {100 * count / total:5.1f}%  {name}")
    return "\n".join(lines)


def _count(
    path: Path,
) -> tuple[collections.Counter[str], collections.Counter[str], int]:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_frame(f) for f in stack.split(";")]
        for name, where in set(frames):
            if _package_of(where) in PROJECT_PACKAGES and where != "service/cli.py":
                inclusive[f"{name} ({where})"] += count
        own[_package(*frames[-1])] += count
    return inclusive, own, total


def _frame(text: str) -> tuple[str, str]:
    """``func (path/to/file.py:12)`` -> ``("func", "path/to/file.py")``."""
    name, _, where = text.partition(" (")
    return name, where.rstrip(")").rsplit(":", 1)[0]


def _package_of(where: str) -> str:
    """py-spy names files relative to their sys.path entry: the first part is the package."""
    return where.split("/", 1)[0].removesuffix(".py")


def _package(name: str, where: str) -> str:
    package = _package_of(where)
    if package in PROJECT_PACKAGES:
        return f"ledger: {where}"
    if where == "<string>":
        return "generated __init__ (dataclasses)"
    if name == "Runner.run" and where == "asyncio/runners.py":
        return "event loop itself (uvloop, asyncpg's protocol, httptools: compiled code)"
    if package in sys.stdlib_module_names:
        return f"stdlib: {package}"
    return package or "(unknown)"
