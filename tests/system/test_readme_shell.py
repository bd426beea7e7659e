"""The README's first session runs as pasted against a fresh ``ledger serve``.

Blocks marked ``<!-- runs as pasted: … -->`` are run in order, as one terminal would: in the
directory where ``ledger serve`` keeps its embedded database, with ``.venv/bin/ledger`` this
installation's command. Every command must succeed, and every curl answer must not be an error
(curl fails on an HTTP error here).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.support import ServerProcess

README = Path(__file__).parents[2] / "README.md"
MARKED = re.compile(r"<!-- runs as pasted: ([^>]*) -->\n```sh\n(.*?)```", re.DOTALL)
# Any HTTP error answer makes curl, and so the script, fail.
PRELUDE = 'set -euo pipefail\ncurl() { command curl --fail-with-body "$@"; }\n'


def marked_blocks() -> dict[str, str]:
    """The README's shell blocks marked to run, by their label."""
    return {label: code for label, code in MARKED.findall(README.read_text())}


def test_the_first_session_runs_as_pasted(
    tmp_path: Path, ledger_processes: Callable[..., ServerProcess]
) -> None:
    # given a fresh directory where .venv/bin/ledger is this installation's command
    blocks = marked_blocks()
    assert list(blocks) == ["the first session", "point in time", "data in and out"]
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "ledger").symlink_to(Path(sys.executable).parent / "ledger")
    # and `ledger serve` started there, as the README says, with nothing set
    server = ledger_processes(None, "serve", cwd=tmp_path)
    server.start(within=60)
    script = "\n".join(blocks.values()).replace("localhost:8000", f"localhost:{server.port}")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    environment.pop("DATABASE_URL", None)
    # when the marked blocks run in a second terminal, in the same directory
    ran = subprocess.run(
        ["bash", "-c", PRELUDE + script],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # then every command succeeded, and the answers say what the README says
    assert ran.returncode == 0, ran.stdout + ran.stderr
    out = ran.stdout
    assert '"intact":true' in out and "intact: 2 events" in out
    assert '"schema_version"' not in out  # shown only when not 1, as the README says
    answers = re.findall(r'\{"company_id":"zhipu-ai".*?"position":\d+\}', out)
    assert len(answers) == 3, out
    assert '"valuation":{"value":"1000000000","currency":"USD"' in answers[0]
    assert '"valuation":null' in answers[1] and '"valuation":null' in answers[2]
    assert '"position":1' in answers[2]
    # the log, and its export checked offline (`ledger verify` also reports the Merkle tree,
    # "tree intact: N events", N being however far the notary had built it by then)
    assert len(re.findall(r"(?<!tree )intact: 2 events", out)) == 2
    assert (tmp_path / "ledger.jsonl").read_text().count("\n") == 2
    # and the server stops as a user's Ctrl-C would, its embedded PostgreSQL with it
    assert server.terminate() == 0
