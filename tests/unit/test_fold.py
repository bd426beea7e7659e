"""Given these events, then this state: the pure folds of projections/, with no database."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec

from events.vocabulary import PAYLOAD_TYPES
from projections.company import company_state, valuations
from projections.rules import rules_in_force
from projections.timeline import LoggedEvent, effective_facts

T0 = dt.datetime(2023, 10, 1, tzinfo=dt.UTC)
US_RULE = {
    "rule_id": "us-advanced-computing-2022",
    "issuing_jurisdiction": "US",
    "authority": "BIS",
    "title": "Advanced computing",
    "action": "imposed",
    "restricted_items": ["A100", "H100"],
    "target_jurisdictions": ["CN"],
    "target_entities": [],
}


class Log:
    """Builds a log in memory: each event recorded one hour after the previous one."""

    def __init__(self) -> None:
        self.events: list[LoggedEvent] = []

    def add(self, type_: str, effective: str, data: dict[str, Any]) -> LoggedEvent:
        position = len(self.events) + 1
        event = LoggedEvent(
            event_id=uuid.uuid4(),
            type=type_,
            position=position,
            recorded_at=T0 + dt.timedelta(hours=position),
            effective_date=dt.date.fromisoformat(effective),
            data=msgspec.convert(data, PAYLOAD_TYPES[type_]),
        )
        self.events.append(event)
        return event

    def state(
        self, as_of: str, known_at: dt.datetime | None = None, company: str = "zhipu-ai"
    ) -> Any:
        known = known_at or T0 + dt.timedelta(days=365)
        facts = effective_facts(self.events, known)
        rules = rules_in_force(facts, dt.date.fromisoformat(as_of))
        mine = [f for f in facts if getattr(f.data, "company_id", None) == company]
        return company_state(company, mine, rules, dt.date.fromisoformat(as_of))


def registered(log: Log) -> LoggedEvent:
    return log.add(
        "company_registered",
        "2019-06-01",
        {"company_id": "zhipu-ai", "name": "Zhipu AI", "jurisdiction": "CN"},
    )


def valuation(log: Log, effective: str, value: str) -> LoggedEvent:
    return log.add(
        "valuation_reported",
        effective,
        {"company_id": "zhipu-ai", "valuation": {"value": value, "currency": "USD"}},
    )


def test_registration_gives_name_and_jurisdiction() -> None:
    log = Log()
    registered(log)
    state = log.state("2020-01-01")
    assert (state.name, state.jurisdiction) == ("Zhipu AI", "CN")
    assert state.valuation is None
    assert state.total_raised_usd == "0"


def test_unknown_before_its_first_effective_fact() -> None:
    log = Log()
    registered(log)
    assert log.state("2019-05-31") is None


def test_latest_valuation_by_effective_date_on_each_date() -> None:
    # given the July and September 2023 valuations
    log = Log()
    registered(log)
    september = valuation(log, "2023-09-15", "1000000000")
    july = valuation(log, "2023-07-15", "500000000")  # recorded later, effective earlier
    # then
    assert log.state("2023-07-14").valuation is None
    assert log.state("2023-07-15").valuation.event_id == july.event_id
    assert log.state("2023-09-14").valuation.value == "500000000"
    assert log.state("2023-09-15").valuation.event_id == september.event_id
    assert log.state("2023-12-31").valuation.value == "1000000000"


def test_fact_effective_on_as_of_is_included() -> None:
    log = Log()
    registered(log)
    valuation(log, "2023-09-30", "1000000000")
    assert log.state("2023-09-30").valuation is not None
    assert log.state("2023-09-29").valuation is None


def test_event_recorded_one_microsecond_after_known_at_is_invisible() -> None:
    log = Log()
    registered(log)
    late = valuation(log, "2023-09-15", "1000000000")
    just_before = late.recorded_at - dt.timedelta(microseconds=1)
    assert log.state("2023-12-31", known_at=just_before).valuation is None
    assert log.state("2023-12-31", known_at=late.recorded_at).valuation is not None


def test_rounds_in_effective_order_with_usd_total_and_sorted_investors() -> None:
    log = Log()
    registered(log)
    log.add(
        "round_announced",
        "2023-10-20",
        {
            "company_id": "zhipu-ai",
            "round_name": "2023 rounds",
            "amount": {"value": "2500000000", "currency": "CNY"},
            "amount_usd": "342000000",
            "investors": [{"investor_id": "tencent"}, {"investor_id": "alibaba"}],
        },
    )
    log.add(
        "round_announced",
        "2023-03-01",
        {
            "company_id": "zhipu-ai",
            "round_name": "Series B",
            "amount": {"value": "100.5", "currency": "USD"},
            "investors": [{"investor_id": "alibaba"}],
        },
    )
    log.add(
        "round_announced",
        "2023-05-01",
        {"company_id": "zhipu-ai", "round_name": "Undisclosed", "amount": None, "investors": []},
    )
    state = log.state("2023-12-31")
    assert [r.round_name for r in state.rounds] == ["Series B", "Undisclosed", "2023 rounds"]
    assert state.total_raised_usd == "342000100.5"
    assert state.investors == ["alibaba", "tencent"]


def test_approval_status_is_the_latest_per_jurisdiction_and_scope() -> None:
    log = Log()
    registered(log)
    approval = {
        "company_id": "zhipu-ai",
        "jurisdiction": "CN",
        "authority": "CAC",
        "scope": "public generative AI service",
        "product": "ChatGLM",
        "status": "granted",
    }
    log.add("regulatory_approval", "2023-08-31", approval)
    log.add("regulatory_approval", "2024-01-10", {**approval, "status": "revoked"})
    assert log.state("2023-08-30").approvals == []
    assert log.state("2023-09-01").approvals[0].status == "granted"
    assert log.state("2024-02-01").approvals[0].status == "revoked"


def test_export_rule_in_force_by_jurisdiction_and_by_entity() -> None:
    log = Log()
    registered(log)
    log.add("export_rule", "2022-10-07", US_RULE)
    entity_rule = {
        **US_RULE,
        "rule_id": "entity-list",
        "target_jurisdictions": [],
        "target_entities": ["zhipu-ai"],
    }
    log.add("export_rule", "2024-01-15", entity_rule)
    assert log.state("2022-10-06").export_restrictions == []
    on_dec_2022 = log.state("2022-12-01").export_restrictions
    assert [(r.rule_id, r.reason) for r in on_dec_2022] == [
        ("us-advanced-computing-2022", "jurisdiction")
    ]
    reasons = {r.rule_id: r.reason for r in log.state("2024-02-01").export_restrictions}
    assert reasons == {"us-advanced-computing-2022": "jurisdiction", "entity-list": "entity"}


def test_amended_rule_shows_its_latest_items_and_rescinded_rule_is_not_in_force() -> None:
    log = Log()
    registered(log)
    log.add("export_rule", "2022-10-07", US_RULE)
    log.add(
        "export_rule",
        "2023-10-17",
        {**US_RULE, "action": "amended", "restricted_items": ["A100", "H100", "A800", "H800"]},
    )
    log.add("export_rule", "2025-01-01", {**US_RULE, "action": "rescinded"})
    assert log.state("2023-01-01").export_restrictions[0].restricted_items == ["A100", "H100"]
    amended = log.state("2023-12-01").export_restrictions[0]
    assert amended.restricted_items == ["A100", "H100", "A800", "H800"]
    assert amended.effective_date == dt.date(2023, 10, 17)
    assert log.state("2025-06-01").export_restrictions == []


def test_correction_applies_only_from_when_it_was_recorded() -> None:
    # given a valuation reported one way, then corrected
    log = Log()
    registered(log)
    wrong = valuation(log, "2023-09-15", "1000000000")
    fix = log.add(
        "event_corrected",
        "2023-10-21",
        {
            "target_event_id": str(wrong.event_id),
            "data": {
                "company_id": "zhipu-ai",
                "valuation": {"value": "1100000000", "currency": "USD"},
            },
        },
    )
    # then before the correction the ledger said the original, afterwards the replacement
    before = log.state("2023-12-31", known_at=fix.recorded_at - dt.timedelta(microseconds=1))
    after = log.state("2023-12-31", known_at=fix.recorded_at)
    assert before.valuation.value == "1000000000"
    assert after.valuation.value == "1100000000"
    assert after.valuation.event_id == wrong.event_id


def test_correction_can_move_a_fact_in_valid_time() -> None:
    log = Log()
    registered(log)
    wrong = valuation(log, "2023-09-15", "1000000000")
    log.add(
        "event_corrected",
        "2023-10-21",
        {
            "target_event_id": str(wrong.event_id),
            "data": msgspec.to_builtins(wrong.data),
            "effective_date": "2023-11-01",
        },
    )
    assert log.state("2023-10-01").valuation is None
    assert log.state("2023-11-01").valuation.effective_date == dt.date(2023, 11, 1)


def test_correction_of_a_correction_and_retraction_of_a_correction() -> None:
    log = Log()
    registered(log)
    original = valuation(log, "2023-09-15", "1")
    first = log.add(
        "event_corrected",
        "2023-10-21",
        {
            "target_event_id": str(original.event_id),
            "data": {"company_id": "zhipu-ai", "valuation": {"value": "2", "currency": "USD"}},
        },
    )
    second = log.add(
        "event_corrected",
        "2023-10-22",
        {
            "target_event_id": str(first.event_id),
            "data": {"company_id": "zhipu-ai", "valuation": {"value": "3", "currency": "USD"}},
        },
    )
    assert log.state("2023-12-31").valuation.value == "3"
    log.add(
        "event_retracted", "2023-10-23", {"target_event_id": str(second.event_id), "reason": "x"}
    )
    assert log.state("2023-12-31").valuation.value == "2"
    assert log.state("2023-12-31", known_at=second.recorded_at).valuation.value == "3"


def test_retraction_removes_a_corrected_fact_from_when_it_was_recorded() -> None:
    log = Log()
    registered(log)
    original = valuation(log, "2023-09-15", "1")
    log.add(
        "event_corrected",
        "2023-10-21",
        {
            "target_event_id": str(original.event_id),
            "data": {"company_id": "zhipu-ai", "valuation": {"value": "2", "currency": "USD"}},
        },
    )
    withdrawal = log.add(
        "event_retracted",
        "2023-10-23",
        {"target_event_id": str(original.event_id), "reason": "misreported"},
    )
    assert log.state("2023-12-31").valuation is None
    earlier = withdrawal.recorded_at - dt.timedelta(microseconds=1)
    assert log.state("2023-12-31", known_at=earlier).valuation.value == "2"


def test_valuation_history_includes_round_post_money_valuations() -> None:
    log = Log()
    registered(log)
    valuation(log, "2023-07-15", "500000000")
    log.add(
        "round_announced",
        "2023-09-15",
        {
            "company_id": "zhipu-ai",
            "round_name": "B3",
            "amount": None,
            "investors": [],
            "post_money_valuation": {"value": "1000000000", "currency": "USD"},
        },
    )
    facts = effective_facts(log.events, T0 + dt.timedelta(days=30))
    assert [(v.value, v.basis) for v in valuations(facts)] == [
        ("500000000", None),
        ("1000000000", "post-money"),
    ]
