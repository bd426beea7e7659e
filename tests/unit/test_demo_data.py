"""The demo's dataset: every fact names its source and has a stable id."""

from __future__ import annotations

import json

from service.demo import DATASET


def test_every_demo_fact_names_its_source_and_has_a_stable_id() -> None:
    lines = [json.loads(line) for line in DATASET.read_text().splitlines()]
    assert {e["type"] for e in lines} >= {
        "company_registered",
        "round_announced",
        "valuation_reported",
        "regulatory_approval",
        "export_rule",
        "event_corrected",
    }
    assert all(e["source"]["name"] and e["event_id"] for e in lines)
    assert len({e["event_id"] for e in lines}) == len(lines)
