"""Free-form JSON (metadata, a correction's payload) is bounded in depth: 400 naming the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from events.nesting import MAX_DEPTH
from tests import factories as f
from tests.support import Tokens, append, client_for, count_events, unique_id


def nested(depth: int, kind: str) -> Any:
    """Return a JSON value ``depth`` levels deep: objects or lists inside each other."""
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": value} if kind == "object" else [value]
    return value


def body(envelope: dict[str, Any], metadata: Any) -> bytes:
    # json.dumps recurses, so the deep value is spliced into the text rather than dumped
    text = json.dumps({**envelope, "metadata": "METADATA"})
    return text.replace('"METADATA"', metadata).encode()


def spelled(depth: int, kind: str) -> str:
    opening, closing = ('{"a":', "}") if kind == "object" else ("[", "]")
    return opening * depth + '"leaf"' + closing * depth


@pytest.mark.parametrize("kind", ["object", "list"])
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 330, 980, 5_000, 100_000])
async def test_metadata_nested_too_deeply_is_refused_naming_it(
    db_url: str, tokens: Tokens, kind: str, depth: int
) -> None:
    async with client_for(db_url) as client:
        # given metadata whose one value is nested deeper than the limit (an object counts 1)
        envelope = f.company_registered(unique_id())
        content = body(envelope, '{"k":' + spelled(depth - 1, kind) + "}")
        # when it is posted
        response = await client.post(
            "/events",
            content=content,
            headers={**tokens.header("write"), "Content-Type": "application/json"},
        )
        # then it is a 400 naming the field, and nothing is appended
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in response.json()["errors"]] == ["metadata"]
    assert await count_events(db_url) == 0


async def test_metadata_at_the_limit_is_kept(db_url: str, tokens: Tokens) -> None:
    async with client_for(db_url) as client:
        metadata = {"k": nested(MAX_DEPTH - 1, "list")}
        envelope = {**f.company_registered(unique_id()), "metadata": metadata}
        receipt = await append(client, tokens, envelope)
        stored = await client.get(f"/events/{receipt['event_id']}", headers=tokens.header("read"))
        assert stored.json()["metadata"] == envelope["metadata"]


async def test_a_batch_names_the_item(db_url: str, tokens: Tokens) -> None:
    async with client_for(db_url) as client:
        deep = f.company_registered(unique_id())
        batch = {"events": [f.company_registered(unique_id()), "DEEP"]}
        item = body(deep, '{"k":' + spelled(600, "object") + "}").decode()
        content = json.dumps(batch).replace('"DEEP"', item)
        response = await client.post(
            "/events",
            content=content.encode(),
            headers={**tokens.header("write"), "Content-Type": "application/json"},
        )
        assert response.status_code == 400, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["events[1].metadata"]


async def test_a_correction_payload_nested_too_deeply_is_refused(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        company = unique_id()
        target = await append(client, tokens, f.company_registered(company))
        correction = {
            "type": "event_corrected",
            "effective_date": "2023-01-01",
            "source": f.SOURCE,
            "data": {"target_event_id": target["event_id"], "data": "DEEP"},
        }
        content = json.dumps(correction).replace('"DEEP"', '{"k":' + spelled(900, "list") + "}")
        response = await client.post(
            "/events",
            content=content.encode(),
            headers={**tokens.header("write"), "Content-Type": "application/json"},
        )
        assert response.status_code == 400, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["data.data"]
    assert await count_events(db_url) == 1
