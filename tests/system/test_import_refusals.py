"""``ledger import`` refuses hostile lines by number and field, with no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import factories
from tests.support import count_events, ledger, unique_id


@pytest.mark.parametrize("depth", [40, 900, 50_000])
async def test_metadata_nested_too_deeply_names_its_line(
    db_url: str, tmp_path: Path, depth: int
) -> None:
    # given a file whose third line carries metadata nested far too deep
    lines = [json.dumps(factories.company_registered(unique_id())) for _ in range(3)]
    lines[2] = lines[2][:-1] + ', "metadata": {"k": ' + "[" * depth + "]" * depth + "}}"
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n")
    # when it is imported
    result = ledger(db_url, "import", str(path))
    # then the import stops at that line, naming the field, and appends nothing of its batch
    assert result.returncode == 1
    assert "line 3" in result.stderr and "metadata" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr) < 2_000
    assert await count_events(db_url) == 0


async def test_an_instant_finer_than_microseconds_names_its_line(
    db_url: str, tmp_path: Path
) -> None:
    envelopes = [factories.company_registered(unique_id()) for _ in range(2)]
    envelopes[1]["source"] = {**factories.SOURCE, "published_at": "2023-10-20T08:00:00.1234567Z"}
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in envelopes))
    result = ledger(db_url, "import", str(path))
    assert result.returncode == 1
    assert "line 2" in result.stderr and "source.published_at" in result.stderr
    assert await count_events(db_url) == 0
