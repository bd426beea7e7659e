"""Given reports of facts, then one fact each: corroborated, disputed, ranked, with its sources."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from projections.provenance import Alternative
from tests.unit.reports import COMPANY, Reports, published, ref

US_RULE = {
    "rule_id": "us-advanced-computing",
    "issuing_jurisdiction": "US",
    "authority": "BIS",
    "title": "Advanced computing",
    "action": "imposed",
    "restricted_items": ["A100"],
    "target_jurisdictions": ["CN"],
    "target_entities": [],
}


@dataclass(frozen=True)
class Case:
    """One event type: a report of it, a field reports may disagree on, where the fact shows."""

    type: str
    data: dict[str, Any]
    field: str
    values: tuple[Any, Any]
    shown: Callable[[Any], Any]  # the field's value as the answer shows it
    find: Callable[[Reports], Any]  # the one fact the answer shows

    def given(self, log: Reports, source: str, value: Any = None, **kw: Any) -> Any:
        data = {**self.data, self.field: self.values[0] if value is None else value}
        return log.report(self.type, kw.pop("effective", "2023-10-20"), data, source, **kw)


def _one(items: list[Any]) -> Any:
    assert len(items) == 1, items
    return items[0]


def _money(value: str) -> dict[str, str]:
    return {"value": value, "currency": "USD"}


CASES = [
    Case(
        "company_registered",
        {"company_id": COMPANY, "name": "Zhipu AI", "jurisdiction": "CN"},
        "name",
        ("Zhipu AI", "Zhipu"),
        lambda state: state.name,
        lambda log: log.state(),
    ),
    Case(
        "round_announced",
        {"company_id": COMPANY, "round_name": "Series B3", "amount": None, "investors": []},
        "amount_usd",
        ("342000000", "341000000"),
        lambda r: r.amount_usd,
        lambda log: _one(log.state().rounds),
    ),
    Case(
        "valuation_reported",
        {"company_id": COMPANY},
        "valuation",
        (_money("1000000000"), _money("900000000")),
        lambda v: (v.value, v.currency),
        lambda log: log.state().valuation,
    ),
    Case(
        "regulatory_approval",
        {"company_id": COMPANY, "jurisdiction": "CN", "scope": "chatbot", "status": "granted"},
        "authority",
        ("CAC", "Cyberspace Administration of China"),
        lambda a: a.authority,
        lambda log: _one(log.state().approvals),
    ),
    Case(
        "export_rule",
        US_RULE,
        "title",
        ("Advanced computing", "Advanced computing and semiconductors"),
        lambda r: r.title,
        lambda log: _one(log.rules()),
    ),
]
by_type = pytest.mark.parametrize("case", CASES, ids=[c.type for c in CASES])


def _value(case: Case, index: int) -> Any:
    """A value as the answer shows it: money as (value, currency)."""
    return _plain(case.values[index])


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return value["value"], value["currency"]
    if hasattr(value, "currency"):
        return value.value, value.currency
    return value


def _disputed(case: Case, fact: Any) -> list[Alternative]:
    alternatives: list[Alternative] = fact.disputes[case.field]
    return alternatives


@by_type
def test_two_agreeing_reports_are_one_fact_with_two_sources(case: Case) -> None:
    # given two outlets reporting the same fact
    log = Reports()
    first = case.given(log, "Reuters", published_at=published(20))
    second = case.given(log, "Bloomberg", published_at=published(21))
    # then it is one fact, with both sources and no dispute
    fact = case.find(log)
    assert fact.sources == [ref(first), ref(second)]
    assert fact.disputes == {}


@by_type
def test_disagreeing_reports_give_the_majority_value_and_show_the_other(case: Case) -> None:
    # given two outlets agreeing and a third giving another value, published last
    log = Reports()
    first = case.given(log, "Reuters", published_at=published(20))
    second = case.given(log, "Bloomberg", published_at=published(21))
    other = case.given(log, "Interesting Engineering", case.values[1], published_at=published(22))
    # then the majority's value, with its sources; the other value disputes it with its own
    fact = case.find(log)
    assert case.shown(fact) == _value(case, 0)
    assert fact.sources == [ref(first), ref(second), ref(other)]  # every report of the fact
    assert [_plain(a.value) for a in _disputed(case, fact)] == [_value(case, 1)]
    assert _disputed(case, fact)[0].sources == [ref(other)]


@by_type
def test_a_tie_goes_to_the_most_recently_published_report(case: Case) -> None:
    # given one source each way, the second published later
    log = Reports()
    case.given(log, "Reuters", published_at=published(21))
    case.given(log, "Bloomberg", case.values[1], published_at=published(22))
    # then the later publication's value
    assert case.shown(case.find(log)) == _value(case, 1)


@by_type
def test_a_report_without_a_publication_date_counts_as_the_oldest(case: Case) -> None:
    log = Reports()
    case.given(log, "Undated blog", case.values[1])
    case.given(log, "Reuters", published_at=published(1))
    assert case.shown(case.find(log)) == _value(case, 0)


@by_type
def test_the_same_source_twice_counts_once(case: Case) -> None:
    # given one outlet reporting twice, and another outlet once, published later
    log = Reports()
    case.given(log, "Reuters", published_at=published(20))
    case.given(log, "Reuters", published_at=published(21))
    case.given(log, "Bloomberg", case.values[1], published_at=published(22))
    # then a tie between two sources, the later publication wins
    assert case.shown(case.find(log)) == _value(case, 1)


@by_type
def test_a_preferred_report_beats_a_majority(case: Case) -> None:
    # given two outlets one way and a third, ranked preferred, the other way
    log = Reports()
    case.given(log, "Reuters", published_at=published(21))
    case.given(log, "Bloomberg", published_at=published(22))
    preferred = case.given(log, "Caixin", case.values[1], published_at=published(20))
    ranked = log.rank(preferred, "preferred")
    # then the preferred report's value, from when the rank was recorded
    assert case.shown(case.find(log)) == _value(case, 1)
    before = ranked.recorded_at - ranked.recorded_at.resolution
    assert case.shown(case.find(_known_at(log, before))) == _value(case, 0)


def _known_at(log: Reports, instant: Any) -> Any:
    """The log as a fold sees it at an instant (the helper folds at its default otherwise)."""
    seen = Reports()
    seen.events = [e for e in log.events if e.recorded_at <= instant]
    return seen


@by_type
def test_a_deprecated_report_never_counts(case: Case) -> None:
    # given a report, and another published later that an analyst deprecated
    log = Reports()
    kept = case.given(log, "Reuters", published_at=published(20))
    deprecated = case.given(log, "Tabloid", case.values[1], published_at=published(22))
    log.rank(deprecated, "deprecated")
    # then only the first counts: no dispute, one source
    fact = case.find(log)
    assert case.shown(fact) == _value(case, 0)
    assert (fact.sources, fact.disputes) == ([ref(kept)], {})


@by_type
def test_the_latest_rank_of_a_report_stands(case: Case) -> None:
    # given a report deprecated, then ranked normal again
    log = Reports()
    case.given(log, "Reuters", published_at=published(20))
    later = case.given(log, "Bloomberg", case.values[1], published_at=published(22))
    log.rank(later, "deprecated")
    log.rank(later, "normal")
    # then it counts again (and, published later, wins the tie)
    assert case.shown(case.find(log)) == _value(case, 1)


@pytest.mark.parametrize(
    ("case", "first", "second"),
    [
        (CASES[1], {"round_name": "Series B3"}, {"round_name": "B3 round"}),
        (CASES[2], {}, {"effective": "2023-10-21"}),
        (CASES[3], {"scope": "chatbot"}, {"scope": "generative AI chatbot"}),
        (CASES[4], {}, {"effective": "2023-10-21"}),
    ],
    ids=["round", "valuation", "approval", "rule"],
)
def test_an_explicit_fact_joins_differently_worded_reports(
    case: Case, first: dict[str, Any], second: dict[str, Any]
) -> None:
    # given two reports worded differently, both naming the fact
    log = Reports()
    for source, wording in (("Reuters", first), ("Bloomberg", second)):
        effective = wording.get("effective", "2023-10-20")
        data = {**case.data, case.field: case.values[0]}
        data.update({k: v for k, v in wording.items() if k != "effective"})
        log.report(case.type, effective, data, source, fact="the-fact")
    # then they are one fact: the wording shown, the other wording disputing it
    fact = case.find(log)
    disputing = [s for field in fact.disputes.values() for a in field for s in a.sources]
    assert len(fact.sources) == 2  # both reports are of the one fact
    assert len(disputing) == 1  # and one wording disputes the other


def test_without_an_explicit_fact_differently_worded_rounds_are_two() -> None:
    log = Reports()
    base = {"company_id": COMPANY, "amount": None, "investors": []}
    log.report("round_announced", "2023-10-20", {**base, "round_name": "Series B3"}, "Reuters")
    log.report("round_announced", "2023-10-20", {**base, "round_name": "B3 round"}, "Bloomberg")
    log.report("round_announced", "2023-10-20", {**base, "round_name": "series  b3"}, "Caixin")
    assert sorted(len(r.sources) for r in log.state().rounds) == [1, 2]


@pytest.mark.parametrize(
    ("case", "extra", "given"),
    [
        (CASES[0], {"legal_name": "Beijing Zhipu Huazhang"}, lambda c: c.legal_name),
        (CASES[1], {"post_money_valuation": _money("9")}, lambda r: r.post_money_valuation),
        (CASES[2], {"basis": "post-money"}, lambda v: v.basis),
    ],
    ids=["company", "round", "valuation"],
)
def test_a_report_that_omits_a_field_does_not_dispute_it(
    case: Case, extra: dict[str, Any], given: Callable[[Any], Any]
) -> None:
    # given one report giving a field and a later one omitting it
    log = Reports()
    full = log.report(
        case.type, "2023-10-20", {**case.data, case.field: case.values[0], **extra}, "Reuters"
    )
    terse = case.given(log, "Bloomberg", published_at=published(22))
    # then the field is the one given, undisputed, and both reports are sources
    fact = case.find(log)
    assert fact.disputes == {}
    assert fact.sources == [ref(full), ref(terse)]
    assert _plain(given(fact)) == _plain(next(iter(extra.values())))


def test_an_approval_without_product_joins_its_fact_without_dispute() -> None:
    # given two reports of one approval, named explicitly, one omitting the product
    log = Reports()
    data = {**CASES[3].data, "authority": "CAC"}
    log.report("regulatory_approval", "2023-08-31", {**data, "product": "ChatGLM"}, "A", fact="x")
    log.report("regulatory_approval", "2023-08-31", data, "B", fact="x")
    # then the product is the one given
    approval = _one(log.state().approvals)
    assert (approval.product, approval.disputes) == ("ChatGLM", {})


def test_investors_merge_each_with_the_sources_that_named_it() -> None:
    # given two reports of one round naming overlapping investors
    log = Reports()
    base = {"company_id": COMPANY, "round_name": "2023", "amount": None}
    named = [{"investor_id": "alibaba"}, {"investor_id": "tencent"}]
    first = log.report("round_announced", "2023-10-20", {**base, "investors": named}, "Reuters")
    more = [{"investor_id": "tencent", "lead": True}, {"investor_id": "meituan"}]
    second = log.report("round_announced", "2023-10-20", {**base, "investors": more}, "Caixin")
    # then the round lists every investor once, each with the reports that named it
    state = log.state()
    investors = {i.investor_id: i for i in _one(state.rounds).investors}
    assert {k: sorted(s.name for s in i.sources) for k, i in investors.items()} == {
        "alibaba": ["Reuters"],
        "tencent": ["Caixin", "Reuters"],
        "meituan": ["Caixin"],
    }
    assert ref(first) in investors["alibaba"].sources
    assert ref(second) in investors["meituan"].sources
    assert investors["tencent"].lead
    assert state.investors == ["alibaba", "meituan", "tencent"]


def test_a_rules_items_merge_across_its_reports() -> None:
    log = Reports()
    log.report("export_rule", "2023-10-17", {**US_RULE, "restricted_items": ["A100"]}, "BIS")
    log.report("export_rule", "2023-10-17", {**US_RULE, "restricted_items": ["H800"]}, "Reuters")
    assert sorted(_one(log.rules()).restricted_items) == ["A100", "H800"]


def test_a_round_reported_twice_counts_once_in_the_total() -> None:
    # given two reports of one round
    log = Reports()
    for source in ("Reuters", "Bloomberg"):
        data = {**CASES[1].data, "amount": {"value": "20", "currency": "CNY"}, "amount_usd": "3"}
        log.report("round_announced", "2023-10-20", data, source)
    # then it is raised once
    assert log.state().total_raised_usd == "3"


def test_retracting_one_report_leaves_the_fact_with_the_others() -> None:
    log = Reports()
    kept = CASES[1].given(log, "Reuters")
    gone = CASES[1].given(log, "Bloomberg", "1")
    log.retract(gone)
    round_ = _one(log.state().rounds)
    assert (round_.amount_usd, round_.sources, round_.disputes) == ("342000000", [ref(kept)], {})


def test_a_fact_whose_every_report_is_deprecated_is_not_shown() -> None:
    log = Reports()
    CASES[0].given(log, "Reuters")
    only = CASES[1].given(log, "Tabloid")
    log.rank(only, "deprecated")
    assert log.state().rounds == []
