"""The demo's dataset imports with ``ledger import`` like any other file."""

from __future__ import annotations

from pathlib import Path

from service.demo import DATASET
from tests.support import ledger


async def test_the_dataset_imports_like_any_file(db_url: str, tmp_path: Path) -> None:
    first = ledger(db_url, "import", str(DATASET))
    again = ledger(db_url, "import", str(DATASET))
    assert first.returncode == 0, first.stderr
    assert "28 appended" in first.stdout and "0 appended, 28 already recorded" in again.stdout
