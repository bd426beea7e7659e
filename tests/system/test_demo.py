"""The demo a newcomer starts first: the README's four questions, run as pasted, answered."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

README = Path(__file__).parents[2] / "README.md"


def readme_demo_script() -> str:
    """Return the shell block of the README's demo section."""
    section = README.read_text().split("## The demo", 1)[1]
    return section.split("```sh\n", 1)[1].split("\n```", 1)[0]


def answers(output: str) -> list[Any]:
    """Split what the commands printed (JSON documents one after another) into documents."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(output.rstrip()):
        document, at = decoder.raw_decode(output, at)
        found.append(document)
        while at < len(output) and output[at].isspace():
            at += 1
    return found


def names(fact: dict[str, Any]) -> list[str]:
    return sorted(s["name"] for s in fact["sources"])


def test_the_readme_demo_examples_run_as_pasted_with_the_answers_it_gives(demo: str) -> None:
    script = readme_demo_script().replace("localhost:8000", demo.removeprefix("http://"))
    run = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0 and run.stderr == "", run.stderr
    august, december, rules, first, disputes, sources, south = answers(run.stdout)

    # 1. Zhipu AI on 1 August and on 1 December 2023
    assert august["valuation"]["value"] == "500000000"
    assert names(august["valuation"]) == ["Maginative", "South China Morning Post"]
    assert (august["rounds"], august["approvals"], august["total_raised_usd"]) == ([], [], "0")
    [rule] = august["export_restrictions"]
    assert rule["restricted_items"] == ["Nvidia A100 GPU", "Nvidia H100 GPU"]
    assert names(rule) == ["Interesting Engineering"]
    assert (
        december["valuation"]["value"] == "1000000000"
        and len(december["valuation"]["sources"]) == 2
    )
    b3, raise_ = december["rounds"]
    assert (b3["round_name"], b3["amount"], len(b3["sources"])) == ("Series B3", None, 2)
    assert (raise_["round_name"], raise_["amount_usd"]) == ("2023 financing", "342000000")
    assert raise_["amount"] == {"value": "2500000000", "currency": "CNY"}
    assert len(raise_["sources"]) == 5
    [dissent] = raise_["disputes"]["amount_usd"]
    assert dissent["value"] == "341000000" and names(dissent) == ["Interesting Engineering"]
    assert december["total_raised_usd"] == "342000000"
    [approval] = december["approvals"]
    assert (approval["product"], approval["status"], len(approval["sources"])) == (
        "ChatGLM",
        "granted",
        4,
    )
    [tightened] = december["export_restrictions"]
    assert tightened["effective_date"] == "2023-10-16" and len(tightened["sources"]) == 4

    # 2. the export rules in force on 1 December for China
    [rule] = rules["rules"]
    assert (rule["rule_id"], rule["action"], rule["effective_date"]) == (
        "us-advanced-ai-chips",
        "amended",
        "2023-10-16",
    )
    assert rule["restricted_items"][-1] == "additional Nvidia AI chips"
    assert names(rule) == [
        "Coinspeaker",
        "Interesting Engineering",
        "Maginative",
        "Unattributed web article",
    ]

    # 3. after the first report: one source, no dispute
    assert first["total_raised_usd"] == "342000000"
    assert [(names(r), r["disputes"]) for r in first["rounds"]][-1] == (
        ["South China Morning Post"],
        {},
    )

    # 4. who reported it, and where they disagree
    [fact] = disputes["facts"]
    assert (fact["label"], [f["field"] for f in fact["fields"]]) == (
        "2023 financing",
        ["amount_usd"],
    )
    [field] = fact["fields"]
    assert (field["value"], len(field["sources"])) == ("342000000", 4)
    assert [(a["value"], names(a)) for a in field["alternatives"]] == [
        ("341000000", ["Interesting Engineering"])
    ]
    assert {s["name"]: s["reports"] for s in sources["sources"]} == {
        "Coinspeaker": 4,
        "Interesting Engineering": 4,
        "Maginative": 10,
        "South China Morning Post": 6,
        "Unattributed web article": 4,
    }
    assert south == {
        "sources": [{"name": "South China Morning Post", "reports": 6}],
        "next_after": None,
    }
