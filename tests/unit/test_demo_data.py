"""The demo's dataset: five reports of Zhipu AI's 2023 raise, folded as the ledger folds them."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import msgspec

from events.facts import fact_key
from events.vocabulary import PAYLOAD_TYPES
from projections.company import CompanyState, company_state
from projections.rules import rules_in_force
from projections.timeline import LoggedEvent, effective_facts
from service.demo import DATASET

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
LATER = T0 + dt.timedelta(days=1)
OUTLETS = [  # in the order the demo appends their reports
    "South China Morning Post",
    "Maginative",
    "Unattributed web article",
    "Coinspeaker",
    "Interesting Engineering",
]
LINES: list[dict[str, Any]] = [json.loads(line) for line in DATASET.read_text().splitlines()]


def logged() -> list[LoggedEvent]:
    """The dataset as the ledger records it: one event a minute, in the file's order."""
    events = []
    for position, line in enumerate(LINES, 1):
        data = msgspec.convert(line["data"], PAYLOAD_TYPES[line["type"]])
        effective = dt.date.fromisoformat(line["effective_date"])
        source = line["source"]
        published = source.get("published_at")
        events.append(
            LoggedEvent(
                uuid.UUID(line["event_id"]),
                line["type"],
                position,
                T0 + dt.timedelta(minutes=position),
                effective,
                data,
                source["name"],
                source.get("url"),
                dt.datetime.fromisoformat(published) if published else None,
                fact_key(data, effective, line.get("fact")) or "",
            )
        )
    return events


def state(company: str, known_at: dt.datetime = LATER, as_of: str = "2023-12-01") -> CompanyState:
    facts = effective_facts(logged(), known_at)
    day = dt.date.fromisoformat(as_of)
    mine = [f for f in facts if getattr(f.data, "company_id", None) == company]
    answer = company_state(company, mine, rules_in_force(facts, day), day)
    assert answer is not None
    return answer


def recorded(outlet: str, round_name: str) -> dt.datetime:
    """When the demo recorded an outlet's report of a round of Zhipu AI."""
    [event] = [
        e
        for e in logged()
        if e.source_name == outlet and getattr(e.data, "round_name", None) == round_name
    ]
    return event.recorded_at


def test_every_report_names_its_source_and_has_a_stable_id() -> None:
    assert all(e["source"]["name"] and e["event_id"] for e in LINES)
    assert len({e["event_id"] for e in LINES}) == len(LINES)
    outlets = [e["source"]["name"] for e in LINES]
    assert sorted(set(outlets), key=outlets.index) == OUTLETS
    # sources disagree; the ledger did not record anything wrongly, so nothing is corrected
    assert {e["type"] for e in LINES} == {
        "company_registered",
        "round_announced",
        "valuation_reported",
        "regulatory_approval",
        "export_rule",
    }
    # a report dated only by month, week or year says so
    assert all("date_precision" in e["metadata"] or e["type"] == "round_announced" for e in LINES)


def test_the_raise_counts_once_at_the_majority_figure_with_the_dissent_named() -> None:
    zhipu = state("zhipu-ai")
    assert zhipu.total_raised_usd == "342000000"
    b3, raise_ = zhipu.rounds
    assert (b3.round_name, raise_.round_name) == ("Series B3", "2023 financing")
    assert {s.name for s in raise_.sources} == set(OUTLETS)
    [dissent] = raise_.disputes["amount_usd"]
    assert dissent.value == "341000000"
    assert [s.name for s in dissent.sources] == ["Interesting Engineering"]
    assert list(raise_.disputes) == ["amount_usd"]
    assert {s.name for s in b3.sources} == {"South China Morning Post", "Maginative"}
    named = {i.investor_id: len(i.sources) for i in raise_.investors}
    assert named["alibaba"] == 5 and named["hillhouse"] == 1 and named["shunwei-capital"] == 1


def test_the_valuations_approval_and_chip_rule_are_one_fact_each() -> None:
    zhipu = state("zhipu-ai")
    assert zhipu.valuation is not None and zhipu.valuation.value == "1000000000"
    assert len(zhipu.valuation.sources) == 2
    july = state("zhipu-ai", as_of="2023-08-01").valuation
    assert july is not None and (july.value, len(july.sources)) == ("500000000", 2)
    [approval] = zhipu.approvals
    assert (approval.product, approval.status, len(approval.sources)) == ("ChatGLM", "granted", 4)
    assert approval.disputes == {}
    [rule] = zhipu.export_restrictions
    assert rule.restricted_items == [
        "Nvidia A100 GPU",
        "Nvidia H100 GPU",
        "additional Nvidia AI chips",
    ]
    assert len(rule.sources) == 4 and rule.disputes == {}
    [earlier] = state("zhipu-ai", as_of="2023-08-01").export_restrictions
    assert [s.name for s in earlier.sources] == ["Interesting Engineering"]


def test_baichuans_round_is_reported_by_four_and_its_valuation_by_one() -> None:
    baichuan = state("baichuan")
    [round_] = baichuan.rounds
    assert (round_.round_name, round_.amount_usd, len(round_.sources)) == (
        "Series A1",
        "300000000",
        4,
    )
    assert baichuan.valuation is not None and len(baichuan.valuation.sources) == 1


def test_known_at_shows_the_raise_as_each_report_arrived() -> None:
    first = state("zhipu-ai", known_at=recorded("South China Morning Post", "2023 financing"))
    [raise_] = [r for r in first.rounds if r.round_name == "2023 financing"]
    assert (first.total_raised_usd, len(raise_.sources), raise_.disputes) == ("342000000", 1, {})
    before = recorded("Interesting Engineering", "2023 financing") - dt.timedelta(seconds=1)
    four = state("zhipu-ai", known_at=before)
    assert [len(r.sources) for r in four.rounds] == [2, 4]
    assert all(r.disputes == {} for r in four.rounds)
