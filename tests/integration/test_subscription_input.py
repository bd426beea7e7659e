"""``GET /events/subscribe`` refuses bad input with problems naming the parameter."""

from __future__ import annotations

import pytest

from tests.support import Tokens, client_for


@pytest.mark.parametrize(
    ("query", "headers", "field"),
    [
        ("after=-1", {}, "after"),
        ("after=ten", {}, "after"),
        ("type=round_raised", {}, "type"),
        ("stream=nowhere", {}, "stream"),
        ("", {"Last-Event-ID": "ten"}, "Last-Event-ID"),
        ("", {"Last-Event-ID": "-3"}, "Last-Event-ID"),
    ],
)
async def test_bad_subscription_input_is_a_problem_naming_the_parameter(
    db_url: str, tokens: Tokens, query: str, headers: dict[str, str], field: str
) -> None:
    async with client_for(db_url) as client:
        answer = await client.get(
            f"/events/subscribe?{query}", headers={**tokens.header("read"), **headers}
        )
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in answer.json()["errors"]] == [field]


async def test_subscribing_needs_the_read_scope(db_url: str, tokens: Tokens) -> None:
    async with client_for(db_url) as client:
        answer = await client.get("/events/subscribe", headers=tokens.header("write"))
    assert answer.status_code == 403
