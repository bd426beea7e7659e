"""Given the five news reports of Zhipu AI's 2023 raise, then one round, raised once, disputed."""

from __future__ import annotations

from projections.provenance import Alternative
from tests.unit.reports import COMPANY, Reports, published, ref

# What each of the five reports says (as the demo records them, service/demo_data/): its
# source, when it was published (when it says), the USD figure it gives for the 2.5 billion
# yuan, and the investors it names.
SEED_REPORTS = [
    ("Interesting Engineering", published(23), "341000000",
     ["sequoia", "hillhouse", "xiaomi", "alibaba", "tencent"]),
    ("Unattributed web article", None, "342000000",
     ["alibaba", "tencent", "ant-group", "xiaomi", "hongshan", "meituan"]),
    ("South China Morning Post", None, "342000000",
     ["alibaba", "tencent", "ant-group", "meituan", "xiaomi", "shunwei-capital", "gl-ventures",
      "hongshan"]),
    ("Maginative", None, "342000000", ["alibaba", "tencent", "meituan", "ant-group"]),
    ("Coinspeaker", None, "342000000",
     ["alibaba", "tencent", "hongshan", "meituan", "ant-group", "xiaomi"]),
]  # fmt: skip


def seed_log() -> tuple[Reports, list[object]]:
    log = Reports()
    log.report(
        "company_registered",
        "2019-06-01",
        {"company_id": COMPANY, "name": "Zhipu AI", "jurisdiction": "CN"},
        "Maginative",
    )
    reports = []
    for source, when, usd, investors in SEED_REPORTS:
        data = {
            "company_id": COMPANY,
            "round_name": "2023 rounds",
            "amount": {"value": "2500000000", "currency": "CNY"},
            "amount_usd": usd,
            "investors": [{"investor_id": i} for i in investors],
        }
        reports.append(log.report("round_announced", "2023-10-20", data, source, when))
    return log, reports


def test_five_reports_of_one_raise_count_once_with_the_minority_figure_disputed() -> None:
    # given five reports of the raise, four saying US$342 million and one US$341 million
    log, reports = seed_log()
    # then the raise is counted once, at the majority's figure
    state = log.state()
    assert state.total_raised_usd == "342000000"
    [round_] = state.rounds
    assert round_.amount_usd == "342000000"
    # and all five reports are its sources; the fifth disputes the figure
    assert {s.name for s in round_.sources} == {name for name, *_ in SEED_REPORTS}
    assert round_.disputes == {
        "amount_usd": [Alternative(value="341000000", sources=[ref(reports[0])])]
    }


def test_the_raise_names_every_investor_any_report_named() -> None:
    log, _ = seed_log()
    [round_] = log.state().rounds
    named = {i.investor_id: {s.name for s in i.sources} for i in round_.investors}
    assert named["hillhouse"] == {"Interesting Engineering"}
    assert len(named["alibaba"]) == 5
    assert len(named) == 10


def test_before_the_other_reports_the_first_report_stood_alone() -> None:
    # given only the first report known at an instant
    log, reports = seed_log()
    first = reports[0].recorded_at  # type: ignore[attr-defined]
    # then the answer at that instant is its figure, with one source and no dispute
    state = log.state(known_at=first)
    [round_] = state.rounds
    assert (state.total_raised_usd, len(round_.sources), round_.disputes) == ("341000000", 1, {})
