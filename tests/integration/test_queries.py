"""Point-in-time answers over HTTP, against a ledger built from the public reports."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests import factories as f
from tests.support import Tokens, append, client_for, unique_id

CHIP_RULE = "us-advanced-computing"


async def get(client: AsyncTestClient[Any], tokens: Tokens, path: str, **params: Any) -> Any:
    return await client.get(path, params=params, headers=tokens.header("read"))


def just_before(receipt: dict[str, Any]) -> str:
    recorded = dt.datetime.fromisoformat(receipt["recorded_at"])
    return (recorded - dt.timedelta(microseconds=1)).isoformat()


async def build_zhipu(client: AsyncTestClient[Any], tokens: Tokens, company: str) -> dict[str, Any]:
    """Register the company, its July and September 2023 valuations, the round and a rule."""
    receipts: dict[str, Any] = {}
    receipts["registered"] = await append(client, tokens, f.company_registered(company))
    july = f.valuation_reported(company, "500000000", effective_date="2023-07-15")
    receipts["july"] = await append(client, tokens, july)
    september = f.valuation_reported(company, "1000000000", effective_date="2023-09-15")
    receipts["september"] = await append(client, tokens, september)
    receipts["round"] = await append(client, tokens, f.round_announced(company))
    receipts["rule"] = await append(client, tokens, f.export_rule(f"{CHIP_RULE}-{company}"))
    receipts["september_envelope"] = september
    return receipts


async def test_company_state_on_two_dates(db_url: str, tokens: Tokens) -> None:
    async with client_for(db_url) as client:
        company = unique_id()
        await build_zhipu(client, tokens, company)
        # when
        summer = (await get(client, tokens, f"/companies/{company}", as_of="2023-08-01")).json()
        autumn = (await get(client, tokens, f"/companies/{company}", as_of="2023-10-31")).json()
        # then
        assert summer["valuation"]["value"] == "500000000"
        assert summer["rounds"] == [] and summer["total_raised_usd"] == "0"
        assert autumn["valuation"]["value"] == "1000000000"
        assert [r["round_name"] for r in autumn["rounds"]] == ["2023 rounds"]
        assert autumn["total_raised_usd"] == "342000000"
        assert autumn["investors"] == ["alibaba", "tencent"]
        assert autumn["as_of"] == "2023-10-31"
        restriction = autumn["export_restrictions"][0]
        assert (restriction["reason"], restriction["effective_date"]) == (
            "jurisdiction",
            "2022-10-07",
        )
        assert autumn["position"] >= 5


async def test_known_at_before_and_after_a_correction(db_url: str, tokens: Tokens) -> None:
    async with client_for(db_url) as client:
        # given a valuation later corrected
        company = unique_id()
        receipts = await build_zhipu(client, tokens, company)
        september = receipts["september_envelope"]
        replacement = {**september["data"], "valuation": {"value": "1100000000", "currency": "USD"}}
        fix = await append(client, tokens, f.corrected(september["event_id"], replacement))
        # when
        before = await get(
            client, tokens, f"/companies/{company}", as_of="2023-12-31", known_at=just_before(fix)
        )
        after = await get(
            client, tokens, f"/companies/{company}", as_of="2023-12-31", known_at=fix["recorded_at"]
        )
        # then
        assert before.json()["valuation"]["value"] == "1000000000"
        assert after.json()["valuation"]["value"] == "1100000000"
        assert before.json()["position"] == fix["position"] - 1
        assert after.json()["position"] == fix["position"]


async def test_valuations_list_every_valuation_in_effective_order(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        company = unique_id()
        await build_zhipu(client, tokens, company)
        body = (await get(client, tokens, f"/companies/{company}/valuations")).json()
        assert [v["value"] for v in body["valuations"]] == ["500000000", "1000000000"]
        assert [v["effective_date"] for v in body["valuations"]] == ["2023-07-15", "2023-09-15"]
        # as_of keeps those effective by then, the day itself included
        for as_of, expected in (("2023-07-14", []), ("2023-07-15", ["500000000"])):
            cut = (
                await get(client, tokens, f"/companies/{company}/valuations", as_of=as_of)
            ).json()
            assert [v["value"] for v in cut["valuations"]] == expected
            assert cut["as_of"] == as_of


async def test_portfolio_lists_companies_and_rounds_of_an_investor(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        company = unique_id()
        receipts = await build_zhipu(client, tokens, company)
        last = receipts["rule"]["position"]  # the portfolio comes from the read models: wait
        body = (
            await get(
                client,
                tokens,
                "/investors/alibaba/portfolio",
                as_of="2023-12-31",
                min_position=last,
            )
        ).json()
        holdings = [(c["company_id"], c["rounds"]) for c in body["companies"]]
        assert (company, ["2023 rounds"]) in holdings
        early = (
            await get(client, tokens, "/investors/alibaba/portfolio", as_of="2023-01-01")
        ).json()
        assert early["companies"] == []
        unknown = await get(client, tokens, "/investors/nobody-at-all/portfolio")
        assert unknown.status_code == 404


async def test_export_rules_in_force_filtered_by_target(db_url: str, tokens: Tokens) -> None:
    async with client_for(db_url) as client:
        rule_id = unique_id("rule")
        await append(client, tokens, f.export_rule(rule_id))
        rescinded = f.export_rule(rule_id, effective_date="2025-01-01")
        rescinded["data"] = {**rescinded["data"], "action": "rescinded"}
        await append(client, tokens, rescinded)
        in_force = (await get(client, tokens, "/export-rules", as_of="2023-12-01")).json()
        assert rule_id in [r["rule_id"] for r in in_force["rules"]]
        for_us = (
            await get(client, tokens, "/export-rules", as_of="2023-12-01", target_jurisdiction="US")
        ).json()
        assert rule_id not in [r["rule_id"] for r in for_us["rules"]]
        later = (await get(client, tokens, "/export-rules", as_of="2025-06-01")).json()
        assert rule_id not in [r["rule_id"] for r in later["rules"]]


async def test_companies_are_listed_by_pages(db_url: str, tokens: Tokens) -> None:
    async with client_for(db_url) as client:
        ids = sorted(unique_id() for _ in range(3))
        for company in ids:
            last = await append(client, tokens, f.company_registered(company))
        first = (
            await get(client, tokens, "/companies", limit=2, min_position=last["position"])
        ).json()
        assert [c["company_id"] for c in first["companies"]] == ids[:2]
        rest = (await get(client, tokens, "/companies", limit=2, after=first["next_after"])).json()
        assert [c["company_id"] for c in rest["companies"]] == ids[2:]
        assert rest["next_after"] is None
        before = (await get(client, tokens, "/companies", as_of="2019-01-01")).json()
        assert before["companies"] == []


async def test_unknown_company_is_404(db_url: str, tokens: Tokens) -> None:
    async with client_for(db_url) as client:
        company = unique_id()
        registered = await append(client, tokens, f.company_registered(company))
        assert (await get(client, tokens, f"/companies/{unique_id()}")).status_code == 404
        before = await get(client, tokens, f"/companies/{company}", as_of="2019-05-31")
        assert before.status_code == 404
        assert before.json()["detail"].endswith("effective by 2019-05-31")
        too_early = await get(
            client, tokens, f"/companies/{company}", known_at=just_before(registered)
        )
        assert too_early.status_code == 404
        assert too_early.headers["content-type"] == "application/problem+json"
        # the detail names the instant that hid it, not only the date
        assert "as known at " in too_early.json()["detail"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"as_of": "2023-02-30"}, "as_of"),
        ({"as_of": "20230930"}, "as_of"),
        ({"as_of": "yesterday"}, "as_of"),
        ({"known_at": "2023-10-21T08:00:00"}, "known_at"),
        ({"known_at": "2023-10-21"}, "known_at"),
        ({"min_position": "-1"}, "min_position"),
    ],
)
async def test_invalid_times_are_400_naming_the_parameter(
    db_url: str, tokens: Tokens, params: dict[str, str], field: str
) -> None:
    async with client_for(db_url) as client:
        company = unique_id()
        await append(client, tokens, f.company_registered(company))
        response = await get(client, tokens, f"/companies/{company}", **params)
        assert response.status_code == 400, response.text
        assert response.json()["errors"][0]["field"] == field


async def test_min_position_waits_for_the_ledger_or_answers_503(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        company = unique_id()
        receipt = await append(client, tokens, f.company_registered(company))
        reached = await get(
            client, tokens, f"/companies/{company}", min_position=receipt["position"]
        )
        assert reached.status_code == 200
        assert reached.json()["position"] >= receipt["position"]
        ahead = await get(
            client, tokens, f"/companies/{company}", min_position=receipt["position"] + 100
        )
        assert ahead.status_code == 503
        assert ahead.headers["retry-after"]


async def test_a_rule_appended_after_earlier_queries_is_seen_from_its_recording_on(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        # given a company already queried (so the export rules have been read)
        company = unique_id()
        await append(client, tokens, f.company_registered(company))
        first = (await get(client, tokens, f"/companies/{company}", as_of="2024-06-01")).json()
        assert first["export_restrictions"] == []
        # when a rule naming it is appended
        rule = f.export_rule(unique_id("rule"), effective_date="2024-01-15")
        rule["data"] = {**rule["data"], "target_jurisdictions": [], "target_entities": [company]}
        receipt = await append(client, tokens, rule)
        # then the next query shows it, and one known before its recording does not
        now = (await get(client, tokens, f"/companies/{company}", as_of="2024-06-01")).json()
        assert [r["reason"] for r in now["export_restrictions"]] == ["entity"]
        before = await get(
            client,
            tokens,
            f"/companies/{company}",
            as_of="2024-06-01",
            known_at=just_before(receipt),
        )
        assert before.json()["export_restrictions"] == []


async def test_an_answer_for_now_reports_the_instant_it_reflects(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        company = unique_id()
        receipt = await append(client, tokens, f.company_registered(company))
        # when asked for "now", then it answers as of the newest recorded event, an instant
        # that no event appended later can share, so asking again with it gives the same answer
        first = (await get(client, tokens, f"/companies/{company}")).json()
        assert (first["known_at"], first["position"]) == (
            receipt["recorded_at"],
            receipt["position"],
        )
        await append(client, tokens, f.valuation_reported(company))
        again = (
            await get(client, tokens, f"/companies/{company}", known_at=first["known_at"])
        ).json()
        assert again == first
