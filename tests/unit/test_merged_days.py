"""A timeline's merged facts, kept between days asked, give the answer a fold from scratch gives.

Reports of one fact here fall on different days (a round's name reported on several dates), so
a day can see some of a fact's reports and not others.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from events.vocabulary import PAYLOAD_TYPES
from projections.company import fold_company, fold_shown
from projections.merged import Merged
from projections.timeline import LoggedEvent, effective_facts, timeline

COMPANY = "zhipu-ai"
DAY0 = dt.date(2023, 1, 1)
KNOWN = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
DAYS = [DAY0 + dt.timedelta(days=n) for n in range(-1, 10)]

days = st.integers(0, 8).map(lambda n: DAY0 + dt.timedelta(days=n))
sources = st.tuples(
    st.sampled_from(["Reuters", "Bloomberg", "Caixin"]),
    st.none() | st.integers(0, 3).map(lambda n: dt.datetime(2023, 10, 20 + n, tzinfo=dt.UTC)),
)


def money(value: str, currency: str = "USD") -> dict[str, str]:
    return {"value": value, "currency": currency}


reports = st.one_of(
    st.builds(
        lambda v: ("valuation_reported", {"company_id": COMPANY, "valuation": money(v)}),
        st.sampled_from(["1", "2", "2.0"]),
    ),
    st.builds(
        lambda name, usd, names: (
            "round_announced",
            {
                "company_id": COMPANY,
                "round_name": name,
                "amount": money("100", "CNY"),
                "amount_usd": usd,
                "investors": [{"investor_id": n} for n in names],
            },
        ),
        st.sampled_from(["Series A", "series a", "Series B"]),
        st.none() | st.sampled_from(["7", "8"]),
        st.lists(st.sampled_from(["alibaba", "tencent", "meituan"]), unique=True),
    ),
    st.builds(
        lambda status, authority: (
            "regulatory_approval",
            {
                "company_id": COMPANY,
                "jurisdiction": "CN",
                "authority": authority,
                "scope": "chatbot",
                "status": status,
            },
        ),
        st.sampled_from(["granted", "revoked"]),
        st.sampled_from(["CAC", "MIIT"]),
    ),
    st.builds(
        lambda name: (
            "company_registered",
            {"company_id": COMPANY, "name": name, "jurisdiction": "CN"},
        ),
        st.sampled_from(["Zhipu AI", "Zhipu"]),
    ),
)


@st.composite
def logs(draw: Any) -> list[LoggedEvent]:
    """Draw reports of a few facts on several days, and ranks and retractions of some."""
    events: list[LoggedEvent] = []
    for day, (type_, data), (name, published) in draw(
        st.lists(st.tuples(days, reports, sources), min_size=1, max_size=14)
    ):
        payload = msgspec.convert(data, PAYLOAD_TYPES[type_])
        position = len(events) + 1
        events.append(
            LoggedEvent(uuid.uuid4(), type_, position, KNOWN, day, payload, name, None, published)
        )
    for target in draw(st.lists(st.sampled_from(events), max_size=4)):
        rank = draw(st.sampled_from(["preferred", "deprecated", None]))
        if rank is None:
            type_, data = "event_retracted", {"reason": "x"}
        else:
            type_, data = "report_ranked", {"rank": rank, "reason": "x"}
        data = {**data, "target_event_id": str(target.event_id)}
        payload = msgspec.convert(data, PAYLOAD_TYPES[type_])
        events.append(LoggedEvent(uuid.uuid4(), type_, len(events) + 1, KNOWN, DAY0, payload))
    return events


@settings(max_examples=300, deadline=None)
@given(logs(), st.randoms(use_true_random=False))
def test_kept_merges_answer_every_day_as_a_fold_from_scratch(log: Any, random: Any) -> None:
    # given a company's facts, merged once and kept
    facts = timeline(effective_facts(log, KNOWN))
    merged = Merged(facts)
    # when every day is asked about, in any order, twice
    asked = DAYS * 2
    random.shuffle(asked)
    for day in asked:
        # then each answer is the one folded from scratch for that day
        expected = fold_company(COMPANY, facts.until(day), [])
        assert fold_shown(COMPANY, merged.until(day), []) == expected
