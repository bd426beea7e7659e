"""The served OpenAPI document describes what clients send, including the append body."""

from __future__ import annotations

import json
import re

from events.vocabulary import EVENT_TYPES
from tests.support import client_for


async def test_the_document_describes_the_append_body_and_every_event_type(db_url: str) -> None:
    async with client_for(db_url) as client:
        # when the document is fetched, without a token
        response = await client.get("/schema/openapi.json")
    # then POST /events has a required JSON body naming every event type, single or batch
    assert response.status_code == 200
    operation = response.json()["paths"]["/events"]["post"]
    body = operation["requestBody"]
    assert body["required"] is True
    text = json.dumps(body["content"]["application/json"]["schema"])
    for event_type in EVENT_TYPES:
        assert f'"{event_type}"' in text, event_type
    assert '"events"' in text  # the batch form
    assert "$ref" not in text  # self-contained: nothing dangles


async def test_every_event_type_has_an_example_the_service_accepts(db_url: str) -> None:
    from tests.support import make_tokens

    tokens = await make_tokens(db_url)
    async with client_for(db_url) as client:
        document = (await client.get("/schema/openapi.json")).json()
        examples = document["paths"]["/events"]["post"]["requestBody"]["content"][
            "application/json"
        ]["examples"]
        assert set(EVENT_TYPES) <= set(examples)
        # appended in the order that makes each valid (targets and companies first)
        order = ["company_registered", "batch", *EVENT_TYPES]
        for name in dict.fromkeys(order):
            value = examples[name]["value"]
            if name == "batch":
                value = {
                    "events": [e for e in value["events"] if e["type"] != "company_registered"]
                }
            answer = await client.post("/events", json=value, headers=tokens.header())
            assert answer.status_code in (200, 201), (name, answer.text)
        # the webhook bodies are described too
        webhooks = document["paths"]["/webhooks"]["post"]["requestBody"]["content"]
        assert "url" in json.dumps(webhooks["application/json"]["schema"])
        docs = await client.get("/schema/swagger")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_the_docs_page_loads_nothing_from_elsewhere(db_url: str) -> None:
    async with client_for(db_url) as client:
        page = await client.get("/schema/swagger")
        assets = [
            await client.get(f"/docs-assets/{name}")
            for name in (
                "swagger-ui-bundle.js",
                "swagger-ui.css",
                "swagger-ui-standalone-preset.js",
            )
        ]
    assert page.status_code == 200
    assert "/docs-assets/swagger-ui-bundle.js" in page.text
    # no CDN: nothing the page loads comes from elsewhere (the document it embeds may name
    # web pages, as the examples' sources do, but those are text, not resources)
    loads = re.findall(
        r"""(?:src|href)\s*=\s*["']?(https?://[^"'\s>]+)|url\(["']?(https?:)""", page.text
    )
    assert [u for u in loads if "github.com" not in "".join(u)] == []
    assert [a.status_code for a in assets] == [200, 200, 200]
