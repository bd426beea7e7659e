"""Properties of the folds: the answer depends on the facts, not on the order they arrived in."""

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


@st.composite
def logs(draw: Any) -> tuple[list[tuple[uuid.UUID, str, dt.date, Any]], list[Any]]:
    """Draw facts (with ids and dates) and amendments that refer to some of them."""
    registered = (
        uuid.UUID(int=draw(st.integers(0, 2**64))),
        "company_registered",
        DAY0,
        {"company_id": COMPANY, "name": "Zhipu AI", "jurisdiction": "CN"},
    )
    drawn = draw(st.lists(st.tuples(days, facts), max_size=12))
    items = [registered] + [(uuid.uuid4(), t, d, data) for d, (t, data) in drawn]
    # amendments never touch the registration: retracted, no company would be left to compare
    targets = draw(st.lists(st.sampled_from(items[1:]), max_size=4)) if len(items) > 1 else []
    amendments = []
    for target_id, type_, _, data in targets:
        if draw(st.booleans()) and type_ == "valuation_reported":
            replacement = {**data, "valuation": money(draw(amounts))}
            amendments.append(
                ("event_corrected", {"target_event_id": str(target_id), "data": replacement})
            )
        else:
            amendments.append(
                ("event_retracted", {"target_event_id": str(target_id), "reason": "x"})
            )
    return items, amendments


def state_of(
    order: list[tuple[uuid.UUID, str, dt.date, Any]], amendments: list[Any], as_of: dt.date
) -> Any:
    events = []
    for position, (event_id, type_, day, data) in enumerate(order, start=1):
        events.append(
            LoggedEvent(
                event_id, type_, position, KNOWN, day, msgspec.convert(data, PAYLOAD_TYPES[type_])
            )
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
    # given the same facts recorded in two orders (amendments after their targets)
    items, amendments = log
    shuffled = list(items)
    random.shuffle(shuffled)
    # then the company's state is the same on any date
    expected = state_of(items, amendments, as_of)
    assert expected is not None and expected.name == "Zhipu AI"  # a company to compare
    assert state_of(shuffled, amendments, as_of) == expected
