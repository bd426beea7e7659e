"""The served OpenAPI document describes what clients send, including the append body."""

from __future__ import annotations

import json

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
