"""A hot standby of a primary, made and run with the embedded PostgreSQL's own tools.

``pg_basebackup -R`` copies the primary and writes the settings that make the copy follow it
(``standby.signal`` and ``primary_conninfo``); the copy then runs as a hot standby that answers
read-only queries while it replays the primary's WAL. PostgreSQL refuses to run as root, so when
we are root its tools run as the unprivileged user the embedded server uses.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import stat
import subprocess
from pathlib import Path
from types import FrameType
from typing import Any

EMBEDDED_USER = "pgserver"  # the user pgserver runs PostgreSQL as when started by root


def bin_dir() -> Path:
    """The directory of the embedded PostgreSQL's programs (from the pgserver wheel)."""
    import pgserver  # the wheel's location only; importing it starts nothing

    return Path(pgserver.__file__).parent / "pginstall" / "bin"


def _owner() -> dict[str, Any]:
    """Run PostgreSQL's programs as the embedded server's user when we are root."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam(EMBEDDED_USER)
    # Directly rather than through runuser, so that signals reach PostgreSQL itself.
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _own(path: Path) -> None:
    """Give ``path`` to the user PostgreSQL runs as, readable by it alone (as it insists)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        entry = pwd.getpwnam(EMBEDDED_USER)
        shutil.chown(path, entry.pw_uid, entry.pw_gid)
        for parent in path.resolve().parents:  # it must reach its directory, as pgserver does
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                parent.chmod(mode | stat.S_IXOTH | stat.S_IXGRP)
    path.chmod(0o700)


def make_standby(primary_url: str, data_dir: Path) -> None:
    """Copy the primary into ``data_dir`` as a standby of it, unless it already is one."""
    if (data_dir / "PG_VERSION").exists():
        return
    _own(data_dir)
    command = [str(bin_dir() / "pg_basebackup"), "--pgdata", str(data_dir)]
    command += ["--dbname", primary_url, "--wal-method", "stream", "--checkpoint", "fast"]
    command += ["--write-recovery-conf"]  # -R: follow the primary once started
    subprocess.run(command, check=True, **_owner())


def run_standby(data_dir: Path, port: int, host: str = "127.0.0.1") -> int:
    """Run the standby in the foreground until SIGTERM or SIGINT; return its exit status."""
    command = [str(bin_dir() / "postgres"), "-D", str(data_dir), "-p", str(port), "-h", host]
    command += ["-k", str(data_dir.resolve()), "-c", "hot_standby=on"]
    postgres = subprocess.Popen(command, **_owner())

    def stop(signum: int, frame: FrameType | None) -> None:
        postgres.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return postgres.wait()
