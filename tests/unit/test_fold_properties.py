"""Properties of the folds: the answer depends on the facts, not on the order they arrived in.

Facts are reported by several sources, which may disagree, and ranked, corrected or retracted.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from events.vocabulary import PAYLOAD_TYPES
from projections.company import company_state
from projections.rules import rules_in_force
from projections.timeline import LoggedEvent, effective_facts

COMPANY = "zhipu-ai"
DAY0 = dt.date(2023, 1, 1)
KNOWN = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)

days = st.integers(0, 12).map(lambda n: DAY0 + dt.timedelta(days=n))
sources = st.tuples(
    st.sampled_from(["Reuters", "Bloomberg", "Caixin"]),
    st.none() | st.integers(0, 3).map(lambda n: dt.datetime(2023, 10, 20 + n, tzinfo=dt.UTC)),
)
amounts = st.integers(1, 10**12).map(str)
investors = st.lists(st.sampled_from(["alibaba", "tencent", "meituan", "xiaomi"]), unique=True)


def money(value: str, currency: str = "USD") -> dict[str, str]:
    return {"value": value, "currency": currency}


facts = st.one_of(
    st.builds(
        lambda v: ("valuation_reported", {"company_id": COMPANY, "valuation": money(v)}), amounts
    ),
    st.builds(
        lambda v, usd, names: (
            "round_announced",
            {
                "company_id": COMPANY,
                "round_name": f"round {v}",
                "amount": money(v, "CNY"),
                "amount_usd": usd,
                "investors": [{"investor_id": n} for n in names],
            },
        ),
        amounts,
        st.none() | amounts,
        investors,
    ),
    st.builds(
        lambda status, scope: (
            "regulatory_approval",
            {
                "company_id": COMPANY,
                "jurisdiction": "CN",
                "authority": "CAC",
                "scope": scope,
                "status": status,
            },
        ),
        st.sampled_from(["granted", "revoked"]),
        st.sampled_from(["chatbot", "model"]),
    ),
    st.builds(
        lambda rule, action, items: (
            "export_rule",
            {
                "rule_id": rule,
                "issuing_jurisdiction": "US",
                "authority": "BIS",
                "title": rule,
                "action": action,
                "restricted_items": items,
                "target_jurisdictions": ["CN"],
                "target_entities": [],
            },
        ),
        st.sampled_from(["chips-2022", "chips-2023"]),
        st.sampled_from(["imposed", "amended", "rescinded"]),
        st.lists(st.sampled_from(["A100", "H100", "A800"]), unique=True),
    ),
)


Item = tuple[uuid.UUID, str, dt.date, Any, tuple[str, dt.datetime | None]]


def _another_report(draw: Any, type_: str, data: dict[str, Any]) -> dict[str, Any]:
    """Another source's report of the same fact, agreeing or not on a field that is not its key."""
    if type_ == "valuation_reported":
        return {**data, "valuation": money(draw(st.sampled_from(["1", "2", "2.0"])))}
    if type_ == "round_announced":
        names = draw(investors)
        usd = draw(st.none() | st.sampled_from(["7", "8"]))
        return {**data, "amount_usd": usd, "investors": [{"investor_id": n} for n in names]}
    if type_ == "regulatory_approval":
        return {**data, "authority": draw(st.sampled_from(["CAC", "MIIT"]))}
    if type_ == "export_rule":
        items = draw(st.lists(st.sampled_from(["A100", "H800"]), unique=True))
        return {**data, "title": draw(st.sampled_from(["a", "b"])), "restricted_items": items}
    return {**data, "name": draw(st.sampled_from(["Zhipu AI", "Zhipu"]))}


@st.composite
def logs(draw: Any) -> tuple[list[Item], list[Any]]:
    """Draw reports (with ids, dates and sources) and amendments and ranks of some of them."""
    registered: Item = (
        uuid.UUID(int=draw(st.integers(0, 2**64))),
        "company_registered",
        DAY0,
        {"company_id": COMPANY, "name": "Zhipu AI", "jurisdiction": "CN"},
        draw(sources),
    )
    drawn = draw(st.lists(st.tuples(days, facts, sources), max_size=12))
    items = [registered] + [(uuid.uuid4(), t, d, data, s) for d, (t, data), s in drawn]
    # neither further reports nor amendments touch the registration: retracted, deprecated or
    # reworded, there would be no company (or another one) left to compare
    for _, type_, day, data, _ in (
        draw(st.lists(st.sampled_from(items[1:]), max_size=6)) if len(items) > 1 else []
    ):
        items.append((uuid.uuid4(), type_, day, _another_report(draw, type_, data), draw(sources)))
    amendments = []
    targets = draw(st.lists(st.sampled_from(items[1:]), max_size=6)) if len(items) > 1 else []
    for target_id, type_, _, data, _ in targets:
        target = str(target_id)
        choice = draw(st.sampled_from(["correct", "retract", "rank"]))
        if choice == "correct" and type_ in ("valuation_reported", "round_announced"):
            replacement = _another_report(draw, type_, data)
            amendments.append(("event_corrected", {"target_event_id": target, "data": replacement}))
        elif choice == "rank":
            rank = draw(st.sampled_from(["preferred", "normal", "deprecated"]))
            ranked = {"target_event_id": target, "rank": rank, "reason": "x"}
            amendments.append(("report_ranked", ranked))
        else:
            amendments.append(("event_retracted", {"target_event_id": target, "reason": "x"}))
    return items, amendments


def state_of(order: list[Item], amendments: list[Any], as_of: dt.date) -> Any:
    events = []
    for position, (event_id, type_, day, data, (name, published)) in enumerate(order, start=1):
        payload = msgspec.convert(data, PAYLOAD_TYPES[type_])
        events.append(
            LoggedEvent(event_id, type_, position, KNOWN, day, payload, name, None, published)
        )
    for type_, data in amendments:
        position = len(events) + 1
        events.append(
            LoggedEvent(
                uuid.uuid4(),
                type_,
                position,
                KNOWN,
                DAY0,
                msgspec.convert(data, PAYLOAD_TYPES[type_]),
            )
        )
    amended = effective_facts(events, KNOWN)
    rules = rules_in_force(amended, as_of)
    mine = [f for f in amended if getattr(f.data, "company_id", None) == COMPANY]
    return company_state(COMPANY, mine, rules, as_of)


@settings(max_examples=200, deadline=None)
@given(logs(), st.randoms(use_true_random=False), days)
def test_the_answer_does_not_depend_on_the_order_facts_were_recorded_in(
    log: Any, random: Any, as_of: dt.date
) -> None:
    # given the same reports recorded in two orders (amendments and ranks after their targets)
    items, amendments = log
    shuffled = list(items)
    random.shuffle(shuffled)
    # then the company's state is the same on any date
    expected = state_of(items, amendments, as_of)
    assert expected is not None and expected.name == "Zhipu AI"  # a company to compare
    assert state_of(shuffled, amendments, as_of) == expected
