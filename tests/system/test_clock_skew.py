"""Read-your-writes holds when the service's clock is behind the database's.

The server runs under libfaketime (Debian's ``faketime`` package), its clock 3 s behind the
PostgreSQL that stamps ``recorded_at``. ``.ci/run`` installs it and sets
``LEDGER_REQUIRE_FAKETIME=1``, so that there a missing library fails the test instead of
skipping it.
"""

from __future__ import annotations

import email.utils
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import factories
from tests.support import ServerProcess, Tokens, unique_id

LIBFAKETIME = Path(
    os.environ.get("LEDGER_LIBFAKETIME", "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
)
SKEW_SECONDS = 3

if not LIBFAKETIME.exists():
    if os.environ.get("LEDGER_REQUIRE_FAKETIME"):
        raise RuntimeError(f"no libfaketime at {LIBFAKETIME}: apt-get install faketime")
    pytest.skip("no libfaketime here (apt-get install faketime)", allow_module_level=True)


@pytest.fixture
def behind(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """``ledger serve`` with its wall clock 3 s behind the database's."""
    skewed = {
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME": f"-{SKEW_SECONDS}s",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",  # timeouts keep their length
    }
    server = ServerProcess(db_url, tmp_path / "skewed.log", env=skewed)
    server.start()
    yield server
    server.terminate()


def test_a_write_is_read_back_by_a_service_whose_clock_is_behind(
    behind: ServerProcess, tokens: Tokens
) -> None:
    with httpx.Client(base_url=behind.base_url, timeout=30) as client:
        # given a service whose clock really is behind (its Date header says so)
        stamped = email.utils.parsedate_to_datetime(client.get("/health").headers["date"])
        assert time.time() - stamped.timestamp() >= SKEW_SECONDS - 1

        # when a company and its valuation are appended and read back with the receipt
        company = unique_id()
        write = tokens.header("write")
        assert client.post("/events", json=factories.company_registered(company), headers=write)
        valuation = factories.valuation_reported(company)
        receipt = client.post("/events", json=valuation, headers=write).json()
        read = tokens.header("read")
        position = receipt["position"]
        answers = {
            path: client.get(path, params={"min_position": position}, headers=read)
            for path in (
                f"/companies/{company}",
                f"/companies/{company}/valuations",
                "/companies",
                "/export-rules",
            )
        }

    # then every answer reflects the write, and the company's shows the valuation
    for path, answer in answers.items():
        assert answer.status_code == 200, (path, answer.text)
        assert answer.json()["position"] >= position, path
        assert answer.json()["known_at"] >= receipt["recorded_at"], path
    assert answers[f"/companies/{company}"].json()["valuation"]["event_id"] == receipt["event_id"]
    assert len(answers[f"/companies/{company}/valuations"].json()["valuations"]) == 1
