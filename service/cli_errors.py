"""The command line's one-line answers to the mistakes its users make, and its exit codes."""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg

from service.settings import Settings, SettingsError

# 0: done (verify: intact); 1: done, and the answer is no (verify: not intact); 2: could not
# do it (a setting, the database, a file, the port); 130: interrupted.
COULD_NOT = 2
INTERRUPTED = 130

log = logging.getLogger("service.cli")


class CommandError(Exception):
    """A failure the command has explained: its message is the whole story."""


# Failures of reaching PostgreSQL at all: nothing was done.
_UNREACHABLE = (
    OSError,  # refused, unknown host, timed out (after the file errors, which name a file)
    asyncpg.PostgresConnectionError,
    asyncpg.InvalidAuthorizationSpecificationError,  # unknown role, wrong password
    asyncpg.InvalidCatalogNameError,  # no such database
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)


def guarded(command: Callable[[], int], *, debug: bool, long_running: bool) -> int:
    """Run ``command``; answer a known failure with one line and an exit code, not a traceback.

    ``debug`` lets every failure through with its traceback. A long-running command (one that
    logs) says it in a log line, so that its log stays one JSON object a line.
    """
    try:
        return command()
    except KeyboardInterrupt:
        return INTERRUPTED
    except Exception as exc:
        message = None if debug else explain(exc)
        if message is None:
            raise
        if long_running and logging.getLogger().handlers:
            log.error(message)
        else:
            print(f"error: {message}", file=sys.stderr)
        return COULD_NOT


def explain(exc: BaseException) -> str | None:
    """Return what went wrong and what to do, in one line; None for a failure not foreseen."""
    if isinstance(exc, CommandError | SettingsError):
        return str(exc)
    if isinstance(exc, asyncpg.ClientConfigurationError):
        return (
            f"DATABASE_URL is not a PostgreSQL URL ({_first_line(exc)}); write it as "
            "postgresql://user:password@host:5432/dbname"
        )
    if isinstance(exc, OSError) and exc.filename is not None:
        return _file_problem(exc)
    if isinstance(exc, _UNREACHABLE):
        return (
            f"cannot reach {describe_database()}: {_reason(exc)}; check that "
            "PostgreSQL runs there and accepts this user (DATABASE_URL), or unset DATABASE_URL "
            "to use an embedded one in LEDGER_DATA_DIR"
        )
    if isinstance(exc, asyncpg.PostgresError):  # say, a role without the privileges it needs
        return f"{describe_database()} refused: {_first_line(exc)} (ledger --debug shows where)"
    if isinstance(exc, asyncpg.InterfaceError):
        return f"lost {describe_database()}: {_first_line(exc)}; try again"
    return None


def describe_database(settings: Settings | None = None) -> str:
    """Say which database the command uses: host, port and name; never a password."""
    settings = settings or _settings_or_defaults()
    if not settings.database_url:
        return f"the embedded PostgreSQL in {settings.data_dir.resolve()} (LEDGER_DATA_DIR)"
    parts = urlsplit(settings.database_url)
    try:
        port = parts.port or 5432
    except ValueError:  # a port that is not a number: asyncpg refuses the URL too
        port = 5432
    name = parts.path.lstrip("/") or parts.username or "the default"
    host = parts.hostname or parse_qs(parts.query).get("host", ["localhost"])[0]
    where = f"the socket in {host}" if host.startswith("/") else f"{host}:{port}"
    return f'database "{name}" on {where}'


def _settings_or_defaults() -> Settings:
    url = os.environ.get("DATABASE_URL") or None
    data_dir = os.environ.get("LEDGER_DATA_DIR", str(Settings().data_dir))
    return Settings(database_url=url, data_dir=Path(data_dir))


def _file_problem(exc: OSError) -> str:
    path = Path(os.fsdecode(exc.filename))
    data_dir = _settings_or_defaults().data_dir.resolve()
    if path.resolve() in (data_dir, *data_dir.parents):
        return (
            f"cannot use {data_dir} for the embedded database: {exc.strerror}; set "
            "LEDGER_DATA_DIR to a directory you can write, or DATABASE_URL to a PostgreSQL server"
        )
    return f"cannot use {path}: {exc.strerror}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        return "no such host"
    if isinstance(exc, ConnectionRefusedError):
        return "nothing listens there (connection refused)"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return _first_line(exc) or type(exc).__name__


def _first_line(exc: BaseException) -> str:
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return text.strip().splitlines()[0] if text.strip() else ""
