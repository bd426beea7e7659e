"""What was sent is what is stored: values the ledger would round are refused with a 400."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests import factories as f
from tests.support import Tokens, append, client_for, count_events, unique_id


async def post_text(client: Any, tokens: Tokens, text: str) -> Any:
    headers = {**tokens.header("write"), "Content-Type": "application/json"}
    return await client.post("/events", content=text.encode(), headers=headers)


def fields(response: Any) -> list[str]:
    return [e["field"] for e in response.json()["errors"]]


@pytest.mark.parametrize("fraction", ["1234567", "0000001", "1234567890123"])
async def test_published_at_finer_than_microseconds_is_refused(
    db_url: str, tokens: Tokens, fraction: str
) -> None:
    async with client_for(db_url) as client:
        # given a source published at an instant with more than six fraction digits
        source = {**f.SOURCE, "published_at": f"2023-10-20T08:00:00.{fraction}Z"}
        envelope = f.company_registered(unique_id(), source=source)
        # when it is posted alone, or second in a batch
        alone = await post_text(client, tokens, json.dumps(envelope))
        batch = {"events": [f.company_registered(unique_id()), envelope]}
        second = await post_text(client, tokens, json.dumps(batch))
        # then both are refused, naming the field, and nothing is stored
        assert alone.status_code == 400, alone.text
        assert fields(alone) == ["source.published_at"]
        assert second.status_code == 400, second.text
        assert fields(second) == ["events[1].source.published_at"]
    assert await count_events(db_url) == 0


async def test_published_at_to_the_microsecond_is_kept(db_url: str, tokens: Tokens) -> None:
    async with client_for(db_url) as client:
        source = {**f.SOURCE, "published_at": "2023-10-20T08:00:00.123456Z"}
        receipt = await append(client, tokens, f.company_registered(unique_id(), source=source))
        stored = await client.get(f"/events/{receipt['event_id']}", headers=tokens.header("read"))
        assert stored.json()["source"]["published_at"] == "2023-10-20T08:00:00.123456Z"


@pytest.mark.parametrize(
    "number", ["1.0000000000000000001", "0.30000000000000000001", "3.14159265358979323846"]
)
async def test_metadata_number_a_float_would_change_is_refused(
    db_url: str, tokens: Tokens, number: str
) -> None:
    async with client_for(db_url) as client:
        envelope = json.dumps({**f.company_registered(unique_id()), "metadata": "M"})
        text = envelope.replace('"M"', '{"ok": 1, "deep": [{"x": ' + number + "}]}")
        response = await post_text(client, tokens, text)
        assert response.status_code == 400, response.text
        assert fields(response) == ["metadata"]
        assert number in response.json()["detail"]
    assert await count_events(db_url) == 0


async def test_metadata_numbers_a_float_keeps_are_stored_as_sent(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        numbers = '{"a": 0.1, "b": 2.5, "c": 123456789012345678901234567890, "d": -7}'
        envelope = json.dumps({**f.company_registered(unique_id()), "metadata": "M"})
        response = await post_text(client, tokens, envelope.replace('"M"', numbers))
        assert response.status_code == 201, response.text
        stored = await client.get(
            f"/events/{response.json()['event_id']}", headers=tokens.header("read")
        )
        assert '"c":123456789012345678901234567890' in stored.text
        assert stored.json()["metadata"] == {
            "a": 0.1,
            "b": 2.5,
            "c": 123456789012345678901234567890,
            "d": -7,
        }


async def test_known_at_finer_than_microseconds_is_refused(db_url: str, tokens: Tokens) -> None:
    async with client_for(db_url) as client:
        company = unique_id()
        await append(client, tokens, f.company_registered(company))
        response = await client.get(
            f"/companies/{company}",
            params={"known_at": "2030-01-01T00:00:00.0000001Z"},
            headers=tokens.header("read"),
        )
        assert response.status_code == 400, response.text
        assert fields(response) == ["known_at"]
