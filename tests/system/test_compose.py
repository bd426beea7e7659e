"""compose.yaml follows the Compose Specification, and its probes and the Dockerfile's work.

No Docker engine or Compose plugin is at hand to run it, so the file is validated against the
specification's JSON schema (tests/system/compose-spec/), and the health check commands are run
here against a real server.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema_rs
import yaml

from tests.support import ServerProcess

ROOT = Path(__file__).parents[2]
SCHEMA = Path(__file__).parent / "compose-spec" / "compose-spec.json"


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return document


def dockerfile_healthcheck() -> list[str]:
    """The exec-form command of the Dockerfile's HEALTHCHECK."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    found = re.search(r"^HEALTHCHECK .*?CMD (\[.*\])\s*$", text, re.MULTILINE)
    assert found, "the Dockerfile has no HEALTHCHECK in exec form"
    command: list[str] = json.loads(found.group(1))
    return command


def test_the_compose_file_follows_the_compose_specification() -> None:
    validator = jsonschema_rs.validator_for(json.loads(SCHEMA.read_text()))
    errors = [f"{list(e.instance_path)}: {e.message}" for e in validator.iter_errors(compose())]
    assert errors == []


def test_the_service_runs_beside_postgres_with_its_data_in_a_volume() -> None:
    services = compose()["services"]
    postgres, ledger = services["postgres"], services["ledger"]
    # the service waits for a healthy server, and its DATABASE_URL points at that server
    assert ledger["depends_on"]["postgres"]["condition"] == "service_healthy"
    url = urlsplit(re.sub(r"\$\{[^}]*\}", "secret", ledger["environment"]["DATABASE_URL"]))
    assert (url.hostname, url.port, url.path) == ("postgres", 5432, "/ledger")
    assert url.username == postgres["environment"]["POSTGRES_USER"]
    assert url.path.strip("/") == postgres["environment"]["POSTGRES_DB"]
    # the server keeps its data in a named volume
    volume, _, target = postgres["volumes"][0].partition(":")
    assert volume in compose()["volumes"] and target == "/var/lib/postgresql/data"
    # both have health checks; the service's probes liveness
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert "/health/live" in " ".join(ledger["healthcheck"]["test"])
    assert ledger["build"] == "."


def test_the_health_check_commands_pass_against_a_live_server(db_url: str, artifacts: Path) -> None:
    server = ServerProcess(db_url, artifacts / "compose-healthcheck.log")
    server.start()
    try:
        in_image = dockerfile_healthcheck()
        in_compose = compose()["services"]["ledger"]["healthcheck"]["test"][1:]
        for command in (in_image, in_compose):
            assert "/health/live" in " ".join(command)
            assert command[0] == "python"
            env = {**os.environ, "LEDGER_PORT": str(server.port)}
            # the compose check uses the image's port; point it at this server's
            command = [part.replace(":8000/", f":{server.port}/") for part in command]
            done = subprocess.run([sys.executable, *command[1:]], env=env, timeout=30)
            assert done.returncode == 0, command
    finally:
        server.terminate()
    # and once the server is gone, the check fails
    done = subprocess.run([sys.executable, *in_image[1:]], env=env, timeout=30)
    assert done.returncode != 0
