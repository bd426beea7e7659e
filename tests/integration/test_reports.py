"""The five public reports of Zhipu AI's 2023 raise, appended as five sources over HTTP."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from litestar.testing import AsyncTestClient

from tests import factories as f
from tests.support import Tokens, append, client_for, unique_id
from tests.unit.test_seed_reports import SEED_REPORTS

# The August 2023 approval of the chatbot, as four of the five reports tell it.
APPROVAL_SOURCES = [name for name, *_ in SEED_REPORTS[1:]]


def source(name: str, published: dt.datetime | None) -> dict[str, Any]:
    found: dict[str, Any] = {"name": name, "url": f"https://news.example/{len(name)}"}
    if published is not None:
        found["published_at"] = published.isoformat()
    return found


async def build_seed(client: AsyncTestClient[Any], tokens: Tokens) -> tuple[str, list[Any]]:
    """Register the company, then append each report's round and approval as its own events."""
    company = unique_id()
    await append(client, tokens, f.company_registered(company, source=source("Report 003", None)))
    receipts = []
    for name, published, usd, investors in SEED_REPORTS:
        data = {
            **f.round_announced(company)["data"],
            "amount_usd": usd,
            "investors": [{"investor_id": i} for i in investors],
        }
        round_ = f.round_announced(company, data=data, source=source(name, published))
        receipts.append(await append(client, tokens, round_))
    for name in APPROVAL_SOURCES:
        approval = {
            "company_id": company,
            "jurisdiction": "CN",
            "authority": "Cyberspace Administration of China",
            "scope": "public generative AI service",
            "product": "ChatGLM",
            "status": "granted",
        }
        envelope = {
            "type": "regulatory_approval",
            "effective_date": "2023-08-31",
            "source": source(name, None),
            "data": approval,
        }
        await append(client, tokens, envelope)
    return company, receipts


async def read(client: AsyncTestClient[Any], tokens: Tokens, path: str, **params: Any) -> Any:
    response = await client.get(path, params=params, headers=tokens.header("read"))
    assert response.status_code == 200, response.text
    return response.json()


async def test_five_reports_of_the_raise_are_one_round_raised_once(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        # given the five reports, four saying US$342 million and one US$341 million
        company, _ = await build_seed(client, tokens)
        # when the company is asked about
        state = await read(client, tokens, f"/companies/{company}")
    # then the raise counts once, at the majority's figure, the other figure with its source
    assert state["total_raised_usd"] == "342000000"
    [round_] = state["rounds"]
    assert {s["name"] for s in round_["sources"]} == {name for name, *_ in SEED_REPORTS}
    [dissent] = round_["disputes"]["amount_usd"]
    assert dissent["value"] == "341000000"
    assert [s["name"] for s in dissent["sources"]] == ["Interesting Engineering"]
    # and the August approval is one fact with the four reports behind it
    [approval] = state["approvals"]
    assert sorted(s["name"] for s in approval["sources"]) == sorted(APPROVAL_SOURCES)
    assert approval["disputes"] == {}
    assert {s["name"] for s in state["sources"]} == {"Report 003"}


async def test_known_at_between_the_first_report_and_the_others_shows_one_source(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        company, receipts = await build_seed(client, tokens)
        path = f"/companies/{company}"
        # when asked as known just after the first report, and after them all
        first = await read(client, tokens, path, known_at=receipts[0]["recorded_at"])
        last = await read(client, tokens, path, known_at=receipts[-1]["recorded_at"])
    # then the first report stood alone, with its own figure; then all five
    [alone] = first["rounds"]
    assert [s["name"] for s in alone["sources"]] == ["Interesting Engineering"]
    assert (first["total_raised_usd"], alone["disputes"]) == ("341000000", {})
    [merged] = last["rounds"]
    assert (len(merged["sources"]), last["total_raised_usd"]) == (5, "342000000")


async def test_every_answer_carries_the_sources_and_the_disputes_read(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        company, receipts = await build_seed(client, tokens)
        # when the disputes, the sources, a portfolio and the events are read
        disputes = await read(client, tokens, f"/companies/{company}/disputes")
        sources = await read(client, tokens, "/sources", name="ING")
        everyone = await read(client, tokens, "/sources", limit=2)
        portfolio = await read(client, tokens, "/investors/hillhouse/portfolio")
        events = await read(client, tokens, "/events", stream=f"company:{company}")
    # then the one disputed fact is the round, with both sides and their sources
    [fact] = disputes["facts"]
    assert (fact["kind"], fact["label"]) == ("round", "2023 rounds")
    [field] = fact["fields"]
    assert (field["field"], field["value"]) == ("amount_usd", "342000000")
    assert len(field["sources"]) == 4
    assert field["alternatives"][0]["sources"][0]["event_id"] == receipts[0]["event_id"]
    # sources are counted by name, searched ignoring case, and paged
    assert sources["sources"] == [
        {"name": "Interesting Engineering", "reports": 1},
        {"name": "South China Morning Post", "reports": 2},
    ]
    assert len(everyone["sources"]) == 2 and everyone["next_after"] is not None
    # the portfolio names the company once, with the report that named the investor
    [holding] = [c for c in portfolio["companies"] if c["company_id"] == company]
    assert holding["rounds"] == ["2023 rounds"]
    assert [s["name"] for s in holding["sources"]] == ["Interesting Engineering"]
    # and every event shows the fact it reports
    assert {e["fact"] for e in events["events"] if e["type"] == "round_announced"} == {
        "round:2023rounds"
    }


async def test_a_rank_settles_a_dispute_from_when_it_was_recorded(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        company, receipts = await build_seed(client, tokens)
        path = f"/companies/{company}"
        # when an analyst prefers the minority report, and later ranks it normal again
        rank = f.retracted(receipts[0]["event_id"], type="report_ranked")
        rank["data"] = {**rank["data"], "rank": "preferred", "reason": "the company's figure"}
        preferred = await append(client, tokens, rank)
        undo = {**rank, "event_id": str(uuid.uuid4()), "data": {**rank["data"], "rank": "normal"}}
        normal = await append(client, tokens, undo)
        before = await read(client, tokens, path, known_at=receipts[-1]["recorded_at"])
        ranked = await read(client, tokens, path, known_at=preferred["recorded_at"])
        now = await read(client, tokens, path)
        events = await read(client, tokens, "/events", stream=f"company:{company}")
    # then the preferred figure stands while the rank does, and the latest rank stands after
    assert before["total_raised_usd"] == "342000000"
    assert ranked["total_raised_usd"] == "341000000"
    assert ranked["rounds"][0]["disputes"]["amount_usd"][0]["value"] == "342000000"
    assert now["total_raised_usd"] == "342000000"
    # in the rank's target's stream, reporting no fact of its own
    ranks = [e for e in events["events"] if e["type"] == "report_ranked"]
    assert [e["position"] for e in ranks] == [preferred["position"], normal["position"]]
    assert all("fact" not in e for e in ranks)


async def test_an_explicit_fact_joins_differently_worded_reports(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        company = unique_id()
        await append(client, tokens, f.company_registered(company))
        one = f.round_announced(company, fact="zhipu-2023")
        other = f.round_announced(company, fact="zhipu-2023", source={"name": "Report 001"})
        other["data"] = {**other["data"], "round_name": "2023 funding"}
        await append(client, tokens, one)
        await append(client, tokens, other)
        state = await read(client, tokens, f"/companies/{company}")
    [round_] = state["rounds"]
    assert state["total_raised_usd"] == "342000000"
    assert len(round_["sources"]) == 2 and "round_name" in round_["disputes"]


async def test_bad_ranks_and_facts_are_refused_naming_the_field_and_nothing_appended(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        company = unique_id()
        report = await append(client, tokens, f.round_announced(company))
        target = report["event_id"]

        def rank(**data: Any) -> dict[str, Any]:
            envelope = f.retracted(target, type="report_ranked")
            envelope["data"] = {**envelope["data"], "rank": "deprecated", **data}
            return envelope

        no_reason = rank()
        del no_reason["data"]["reason"]
        cases = [
            (rank(target_event_id=str(uuid.uuid4())), 422, "data.target_event_id"),
            (rank(rank="best"), 400, "data.rank"),
            (no_reason, 400, "data.reason"),
            (rank(reason=""), 400, "data.reason"),
            (f.round_announced(company, fact="Series B3"), 400, "fact"),
            ({**rank(), "fact": "b3"}, 400, "fact"),
        ]
        for envelope, status, field in cases:
            # when each is posted
            response = await client.post("/events", json=envelope, headers=tokens.header())
            # then it is refused as a problem naming the field
            assert response.status_code == status, (field, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert field in [e["field"] for e in response.json()["errors"]], response.text
        # and nothing was appended
        events = await read(client, tokens, "/events")
    assert [e["event_id"] for e in events["events"]] == [target]
