"""``ledger import``, ``ledger export`` and ``ledger verify --file``, run as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests import factories
from tests.support import connected, count_events, ledger, unique_id


def write_lines(path: Path, envelopes: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in envelopes))
    return path


def companies(n: int) -> list[dict[str, Any]]:
    return [factories.company_registered(unique_id()) for _ in range(n)]


async def test_a_bad_line_stops_the_import_and_its_batch_is_not_appended(
    db_url: str, tmp_path: Path
) -> None:
    envelopes = companies(700)  # two batches: lines 1-500 and 501-700
    envelopes[599]["data"]["jurisdiction"] = "XX"
    result = ledger(db_url, "import", str(write_lines(tmp_path / "in.jsonl", envelopes)))
    assert result.returncode == 1
    assert "line 600" in result.stderr and "data.jurisdiction" in result.stderr
    assert await count_events(db_url) == 500  # the first batch; nothing of the second


async def test_an_error_found_at_append_names_its_line(db_url: str, tmp_path: Path) -> None:
    envelopes = companies(3)
    envelopes.append(  # a correction of an event that does not exist
        {
            "event_id": "7d9f2c1e-5b8a-4c3d-9e6f-1a2b3c4d5e6f",
            "type": "event_retracted",
            "effective_date": "2023-10-21",
            "source": factories.SOURCE,
            "data": {"target_event_id": "00000000-0000-4000-8000-000000000000", "reason": "x"},
        }
    )
    result = ledger(db_url, "import", str(write_lines(tmp_path / "in.jsonl", envelopes)))
    assert result.returncode == 1
    assert "line 4" in result.stderr and "target_event_id" in result.stderr
    assert await count_events(db_url) == 0


async def test_lines_need_their_event_id(db_url: str, tmp_path: Path) -> None:
    envelopes = companies(2)
    del envelopes[1]["event_id"]
    result = ledger(db_url, "import", str(write_lines(tmp_path / "in.jsonl", envelopes)))
    assert result.returncode == 1
    assert "line 2" in result.stderr and "event_id" in result.stderr
    assert await count_events(db_url) == 0


async def test_importing_again_appends_nothing(db_url: str, tmp_path: Path) -> None:
    envelopes = companies(650)
    path = write_lines(tmp_path / "in.jsonl", envelopes[:300])
    first = ledger(db_url, "import", str(path))
    assert first.returncode == 0, first.stderr
    assert "300 appended" in first.stdout
    # the file grows: a batch now mixes recorded lines with new ones
    write_lines(path, envelopes)
    second = ledger(db_url, "import", str(path))
    assert second.returncode == 0, second.stderr
    assert "350 appended, 300 already recorded" in second.stdout
    third = ledger(db_url, "import", str(path))
    assert "0 appended, 650 already recorded" in third.stdout
    assert await count_events(db_url) == 650
    changed = [dict(e) for e in envelopes]
    changed[10] = {**changed[10], "effective_date": "2020-01-01"}
    conflict = ledger(db_url, "import", str(write_lines(tmp_path / "changed.jsonl", changed)))
    assert conflict.returncode == 1 and "line 11" in conflict.stderr
    assert await count_events(db_url) == 650


async def test_export_then_verify_offline(db_url: str, tmp_path: Path) -> None:
    company = unique_id()
    envelopes = [
        factories.company_registered(company),
        factories.valuation_reported(company),
        factories.round_announced(company),
    ]
    envelopes[1]["metadata"] = {"note": "mid-September", "nested": {"b": 1, "a": [1, 2]}}
    assert (
        ledger(db_url, "import", str(write_lines(tmp_path / "in.jsonl", envelopes))).returncode == 0
    )
    export = tmp_path / "export.jsonl"
    result = ledger(db_url, "export", "--output", str(export))
    assert result.returncode == 0, result.stderr
    lines = export.read_text().splitlines()
    assert [json.loads(line)["position"] for line in lines] == [1, 2, 3]
    assert all({"recorded_at", "hash", "stream"} <= json.loads(line).keys() for line in lines)

    # no database: DATABASE_URL unset and a directory with no embedded server in it
    offline = ledger(None, "verify", "--file", str(export), cwd=tmp_path)
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert "intact: 3 events" in offline.stdout
    assert not (tmp_path / "ledger-data").exists()
    async with connected(db_url) as conn:
        head = await conn.fetchval("SELECT encode(hash, 'hex') FROM ledger_head")
    assert head in offline.stdout  # the auditor can compare it with GET /ledger/digest

    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text(export.read_text().replace('"1000000000"', '"2000000000"'))
    caught = ledger(None, "verify", "--file", str(tampered), cwd=tmp_path)
    assert caught.returncode == 1 and "line 2" in caught.stdout

    dropped = tmp_path / "dropped.jsonl"
    dropped.write_text(lines[0] + "\n" + lines[2] + "\n")
    gap = ledger(None, "verify", "--file", str(dropped), cwd=tmp_path)
    assert gap.returncode == 1 and "line 2" in gap.stdout and "missing" in gap.stdout


async def test_a_partial_export_verifies_from_its_anchor(db_url: str, tmp_path: Path) -> None:
    assert (
        ledger(db_url, "import", str(write_lines(tmp_path / "in.jsonl", companies(5)))).returncode
        == 0
    )
    full, part = tmp_path / "full.jsonl", tmp_path / "part.jsonl"
    ledger(db_url, "export", "-o", str(full))
    ledger(db_url, "export", "--after", "2", "-o", str(part))
    assert [json.loads(x)["position"] for x in part.read_text().splitlines()] == [3, 4, 5]
    second_hash = json.loads(full.read_text().splitlines()[1])["hash"]
    anchored = ledger(
        None, "verify", "--file", str(part), "--previous-hash", second_hash, cwd=tmp_path
    )
    assert anchored.returncode == 0 and "intact: 3 events" in anchored.stdout
    wrong = ledger(None, "verify", "--file", str(part), "--previous-hash", "00" * 32, cwd=tmp_path)
    assert wrong.returncode == 1 and "line 1" in wrong.stdout


async def test_an_export_imports_into_another_ledger(
    db_url: str, server_url: str, tmp_path: Path
) -> None:
    from tests.support import cloned_database

    company = unique_id()
    envelopes = [factories.company_registered(company), factories.valuation_reported(company)]
    ledger(db_url, "import", str(write_lines(tmp_path / "in.jsonl", envelopes)))
    export = tmp_path / "export.jsonl"
    ledger(db_url, "export", "-o", str(export))
    async with cloned_database(server_url) as other:
        result = ledger(other, "import", str(export))
        assert result.returncode == 0, result.stderr
        assert await count_events(other) == 2
        again = tmp_path / "again.jsonl"
        ledger(other, "export", "-o", str(again))
    ids = [json.loads(x)["event_id"] for x in again.read_text().splitlines()]
    assert ids == [e["event_id"] for e in envelopes]


async def test_a_corrupt_export_is_reported_as_not_intact(db_url: str, tmp_path: Path) -> None:
    assert (
        ledger(db_url, "import", str(write_lines(tmp_path / "in.jsonl", companies(2)))).returncode
        == 0
    )
    export = tmp_path / "export.jsonl"
    ledger(db_url, "export", "-o", str(export))
    first, second = export.read_bytes().splitlines()
    naive = json.loads(second)
    naive["recorded_at"] = naive["recorded_at"].removesuffix("Z")  # no offset
    for bad_second in (second.replace(b"Zhipu", b"Zh\xffpu"), json.dumps(naive).encode()):
        broken = tmp_path / "broken.jsonl"
        broken.write_bytes(first + b"\n" + bad_second + b"\n")
        result = ledger(None, "verify", "--file", str(broken), cwd=tmp_path)
        assert result.returncode == 1 and "NOT intact at line 2" in result.stdout, result.stdout
