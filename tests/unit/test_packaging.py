"""The container image's command and the console script resolve to importable code."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _dockerfile_cmd() -> list[str]:
    text = (ROOT / "Dockerfile").read_text()
    match = re.search(r"^CMD\s+(\[.*\])\s*$", text, re.MULTILINE)
    assert match, "the Dockerfile has no exec-form CMD"
    command: list[str] = json.loads(match[1])
    return command


def test_docker_command_target_imports() -> None:
    # given the image's command
    program, *arguments = _dockerfile_cmd()
    # when its console script is resolved the way the installed launcher resolves it
    (script,) = entry_points(group="console_scripts", name=program)
    main = script.load()
    # then it is callable and knows the subcommand
    assert callable(main)
    assert arguments == ["serve"]
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import {script.module}; {script.module}._parser().parse_args({arguments!r})",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_docker_image_runs_as_non_root_user() -> None:
    users = re.findall(r"^USER\s+(\S+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert users, "the Dockerfile sets no USER"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_ledger_help_lists_every_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("serve", "migrate", "verify", "keys"):
        assert command in result.stdout
