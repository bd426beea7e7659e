"""The demo a newcomer starts first: the README's three questions and their answers."""

from __future__ import annotations

import httpx

from service.demo import DEMO_TOKEN

AUTH = {"Authorization": f"Bearer {DEMO_TOKEN}"}


async def test_the_readme_questions_have_the_reports_answers(demo: str) -> None:
    async with httpx.AsyncClient(base_url=demo, headers=AUTH) as http:
        # 1. Zhipu AI on two dates
        august = (await http.get("/companies/zhipu-ai", params={"as_of": "2023-08-01"})).json()
        december = (await http.get("/companies/zhipu-ai", params={"as_of": "2023-12-01"})).json()
        # 2. the export rules in force on 1 December for China
        rules = (
            await http.get(
                "/export-rules", params={"as_of": "2023-12-01", "target_jurisdiction": "CN"}
            )
        ).json()
        # 3. before and after the correction
        rounds = (await http.get("/events", params={"type": "round_announced"})).json()
        before = [e for e in rounds["events"] if e["stream"] == "company:zhipu-ai"][-1]
        earlier = (
            await http.get(
                "/companies/zhipu-ai",
                params={"as_of": "2023-12-01", "known_at": before["recorded_at"]},
            )
        ).json()
        portfolio = (
            await http.get("/investors/alibaba/portfolio", params={"min_position": 12})
        ).json()

    assert august["valuation"]["value"] == "500000000" and august["rounds"] == []
    assert august["approvals"] == [] and august["total_raised_usd"] == "0"
    assert [r["restricted_items"] for r in august["export_restrictions"]] == [
        ["Nvidia A100 GPU", "Nvidia H100 GPU"]
    ]
    assert december["valuation"]["value"] == "1000000000"
    assert [r["round_name"] for r in december["rounds"]] == [
        "Series B3",
        "2023 financing (2.5 billion yuan raised this year)",
    ]
    assert december["total_raised_usd"] == "342000000"
    assert december["approvals"][0]["status"] == "granted"
    assert [r["action"] for r in rules["rules"]] == ["amended"]
    assert earlier["total_raised_usd"] == "341000000"
    assert [h["company_id"] for h in portfolio["companies"]] == ["baichuan", "zhipu-ai"]
