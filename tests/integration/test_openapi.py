"""The served OpenAPI document describes what clients send, including the append body."""

from __future__ import annotations

import json
import re
from typing import Any

from events.vocabulary import EVENT_TYPES
from tests.support import client_for


async def test_the_document_describes_the_append_body_and_every_event_type(db_url: str) -> None:
    async with client_for(db_url) as client:
        # when the document is fetched, without a token
        response = await client.get("/schema/openapi.json")
    # then POST /events has a required JSON body naming every event type, single or batch
    assert response.status_code == 200
    document = response.json()
    schemas = document["components"]["schemas"]
    operation = document["paths"]["/events"]["post"]
    body = operation["requestBody"]
    assert body["required"] is True
    text = json.dumps(_resolved(body["content"]["application/json"]["schema"], schemas))
    for event_type in EVENT_TYPES:
        assert f'"{event_type}"' in text, event_type
    assert '"events"' in text  # the batch form
    # every reference in the document resolves
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(document)))
    assert refs <= set(schemas), refs - set(schemas)


async def test_shared_schemas_are_components(db_url: str) -> None:
    async with client_for(db_url) as client:
        document = (await client.get("/schema/openapi.json")).json()
    schemas = document["components"]["schemas"]
    # Money, Source, each event type's envelope and the problem are described once, by reference
    envelopes = [f"{name}Event" for name in map(_camel, EVENT_TYPES)]
    assert {"Money", "Source", "Problem", "AppendBatch", *envelopes} <= set(schemas)
    body = json.dumps(document["paths"]["/events"]["post"]["requestBody"])
    for envelope in envelopes:
        assert f'"#/components/schemas/{envelope}"' in body, envelope
    # the value's pattern is the one msgspec decodes with, shared by answers and envelopes
    assert "pattern" in schemas["Money"]["properties"]["value"]
    round_announced = json.dumps(schemas["RoundAnnounced"])
    assert round_announced.count('"#/components/schemas/Money"') == 2  # amount, post-money
    source = schemas["RoundAnnouncedEvent"]["properties"]["source"]
    assert source == {"$ref": "#/components/schemas/Source"}
    refused = document["paths"]["/events"]["post"]["responses"]["400"]
    assert refused["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }


def _camel(name: str) -> str:
    return "".join(part.title() for part in name.split("_"))


def _resolved(node: Any, schemas: dict[str, Any], seen: frozenset[str] = frozenset()) -> Any:
    """Return ``node`` with every reference replaced by what it names."""
    if isinstance(node, list):
        return [_resolved(item, schemas, seen) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return {} if name in seen else _resolved(schemas[name], schemas, seen | {name})
    return {key: _resolved(value, schemas, seen) for key, value in node.items()}


async def test_every_event_type_has_an_example_the_service_accepts(db_url: str) -> None:
    from tests.support import make_tokens

    tokens = await make_tokens(db_url)
    async with client_for(db_url) as client:
        document = (await client.get("/schema/openapi.json")).json()
        examples = document["paths"]["/events"]["post"]["requestBody"]["content"][
            "application/json"
        ]["examples"]
        assert set(EVENT_TYPES) <= set(examples)
        # appended in the order that makes each valid (targets and companies first, and the
        # retraction last: nothing amends a retracted event)
        order = ["company_registered", "batch", *EVENT_TYPES]
        order.append(order.pop(order.index("event_retracted")))
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
        schema = webhooks["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/NewWebhook"}
        assert "url" in document["components"]["schemas"]["NewWebhook"]["properties"]
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
