"""The ledger command answers each ordinary mistake with one line and the right exit code."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

import pytest

from tests.support import connected, free_port, with_database

LEDGER = Path(sys.executable).with_name("ledger")  # the installed command, as people run it


class Mistake(NamedTuple):
    args: tuple[str, ...]
    env: dict[str, str]
    says: tuple[str, ...]  # what the one line names


def run(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    clean.pop("DATABASE_URL", None)
    return subprocess.run(
        [str(LEDGER), *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


def mistakes(tmp_path: Path, db_url: str, busy_port: int) -> dict[str, Mistake]:
    nowhere = f"postgresql://auditor:s3cret@127.0.0.1:{free_port()}/ledger"
    (tmp_path / "a-file").write_text("")
    return {
        "port out of range": Mistake(("serve", "--port", "70000"), {}, ("--port", "65535")),
        "port not a number": Mistake(("serve", "--port", "abc"), {}, ("--port", "65535")),
        "LEDGER_PORT not a number": Mistake(
            ("migrate",), {"LEDGER_PORT": "abc"}, ("LEDGER_PORT", "'abc'", "65535")
        ),
        "LEDGER_PORT out of range": Mistake(
            ("keys", "list"), {"LEDGER_PORT": "0"}, ("LEDGER_PORT", "65535")
        ),
        "a duration that is not one": Mistake(
            ("verify",), {"LEDGER_BODY_TIMEOUT": "soon"}, ("LEDGER_BODY_TIMEOUT", "5s")
        ),
        "a count too small": Mistake(("worker",), {"LEDGER_POOL_SIZE": "1"}, ("LEDGER_POOL_SIZE",)),
        "unreachable database, one-shot": Mistake(
            ("keys", "list"),
            {"DATABASE_URL": nowhere},
            ("cannot reach", "127.0.0.1", "DATABASE_URL"),
        ),
        "unreachable database, migrate": Mistake(
            ("migrate",), {"DATABASE_URL": nowhere}, ("cannot reach", '"ledger"')
        ),
        "unreachable database, verify": Mistake(
            ("verify",), {"DATABASE_URL": nowhere}, ("cannot reach",)
        ),
        "unreachable database, serve": Mistake(
            ("serve",),
            # a port of its own: the port check comes first, and 8000 may be taken
            {"DATABASE_URL": nowhere, "LEDGER_PORT": str(free_port())},
            ("cannot reach", "DATABASE_URL"),
        ),
        "no such database": Mistake(
            ("verify",),
            {"DATABASE_URL": with_database(db_url, "no_such_db")},
            ("cannot reach", '"no_such_db"', "does not exist"),
        ),
        "DATABASE_URL not a URL": Mistake(
            ("keys", "list"), {"DATABASE_URL": "localhost:5432"}, ("DATABASE_URL", "postgresql://")
        ),
        "unwritable data directory": Mistake(
            ("keys", "list"),
            {"LEDGER_DATA_DIR": str(tmp_path / "a-file" / "data")},
            ("LEDGER_DATA_DIR", "a-file"),
        ),
        "unreadable export": Mistake(
            ("verify", "--file", str(tmp_path / "missing.jsonl")), {}, ("missing.jsonl",)
        ),
        "unknown scope": Mistake(
            ("keys", "create", "--name", "x", "--scopes", "root"),
            {"DATABASE_URL": db_url},
            ("root", "audit"),
        ),
        "busy port, demo": Mistake(
            ("serve", "--demo"), {"LEDGER_PORT": str(busy_port)}, (str(busy_port), "in use")
        ),
        "busy port": Mistake(
            ("serve",), {"DATABASE_URL": db_url, "LEDGER_PORT": str(busy_port)}, ("in use",)
        ),
        "unknown command": Mistake(("frobnicate",), {}, ("frobnicate", "--help")),
        "no signing key, serve": Mistake(
            ("serve",),
            {
                "DATABASE_URL": db_url,
                "LEDGER_PORT": str(free_port()),
                "LEDGER_SIGNING_KEY_FILE": str(tmp_path / "no-key.pem"),
            },
            ("LEDGER_SIGNING_KEY_FILE", "no-key.pem"),
        ),
        "a signing key that is not one, worker": Mistake(
            ("worker",),
            {"DATABASE_URL": db_url, "LEDGER_SIGNING_KEY_FILE": str(tmp_path / "a-file")},
            ("a-file", "Ed25519"),
        ),
        "LEDGER_NOTARY neither on nor off": Mistake(
            ("migrate",), {"LEDGER_NOTARY": "maybe"}, ("LEDGER_NOTARY", "'maybe'")
        ),
        "a monitor's key that is not one": Mistake(
            ("monitor", "--url", "http://127.0.0.1:9", "--key", "x", "--state", "s"),
            {},
            ("--key",),
        ),
    }


def test_each_mistake_is_one_line_without_a_traceback_and_exits_2(
    tmp_path: Path, db_url: str, busy_port: int
) -> None:
    for name, (args, env, says) in mistakes(tmp_path, db_url, busy_port).items():
        # when
        result = run(*args, env=env, cwd=tmp_path)
        # then
        said = result.stdout + result.stderr
        assert result.returncode == 2, (name, result.returncode, said)
        assert len(said.strip().splitlines()) == 1, (name, said)
        assert "Traceback" not in said and "s3cret" not in said, (name, said)
        for part in says:
            assert part in said, (name, part, said)
        if args[0] == "serve" and "DATABASE_URL" in env and "--port" not in args:
            assert json.loads(said)["level"] == "error", (name, said)  # a JSON log line
        assert "ldg_" not in said, (name, said)  # the demo printed no token


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    nowhere = f"postgresql://127.0.0.1:{free_port()}/ledger"
    result = run("--debug", "keys", "list", env={"DATABASE_URL": nowhere}, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" in result.stderr


async def test_verify_exits_0_intact_1_not_intact(tmp_path: Path, db_url: str) -> None:
    # given a log of one event
    from tests import factories

    async with connected(db_url) as conn:
        created = run(
            "keys",
            "create",
            "--name",
            "auditor",
            "--scopes",
            "audit",
            env={"DATABASE_URL": db_url},
            cwd=tmp_path,
        )
        event = json.dumps(factories.company_registered("acme"))
        (tmp_path / "in.jsonl").write_text(event + "\n")
        imported = run(
            "import", str(tmp_path / "in.jsonl"), env={"DATABASE_URL": db_url}, cwd=tmp_path
        )
        assert imported.returncode == 0, imported.stderr
        intact = run("verify", env={"DATABASE_URL": db_url}, cwd=tmp_path)
        # when the event is changed behind the append-only trigger's back
        async with conn.transaction():
            await conn.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
            await conn.execute("UPDATE events SET effective_date = effective_date + 1")
            await conn.execute("ALTER TABLE events ENABLE ALWAYS TRIGGER events_append_only")
        tampered = run("verify", env={"DATABASE_URL": db_url}, cwd=tmp_path)
    # then
    assert (intact.returncode, tampered.returncode) == (0, 1), (intact, tampered)
    assert "NOT intact" in tampered.stdout
    # and the key was made in the database named, with no password shown
    name = urlsplit(db_url).path.lstrip("/")
    assert created.returncode == 0 and created.stdout.startswith("ldg_"), created
    assert f'database "{name}"' in created.stderr and "audit" in created.stderr, created.stderr


def test_version_and_plain_help(tmp_path: Path) -> None:
    version = run("--version", env={}, cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("ledger 0."), version
    for args in ((), ("serve",), ("keys", "create"), ("verify",)):
        shown = run(*args, "--help", env={}, cwd=tmp_path)
        assert shown.returncode == 0 and "usage: ledger" in shown.stdout, shown
        assert "``" not in shown.stdout, shown.stdout
