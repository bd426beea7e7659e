"""The OpenAPI description of what the service decodes by hand: request bodies.

``POST /events`` and the webhook endpoints read their bodies themselves (to report every error
with its field path), so Litestar cannot see their types. Their schemas come from msgspec, which
decodes the bodies, so the document and the decoders cannot drift apart. The operations refer
to them as ``#/components/schemas/<Name>``; ``SharedSchemas`` serves the document with those
components beside Litestar's (Money, Source, each event type's envelope), so that a generated
client makes one model of each.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast

import msgspec
from litestar import Request
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Example, OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.base import BaseSchemaObject

from events.vocabulary import AnyEnvelope, AppendBatch

COMPONENTS = "#/components/schemas/{name}"
# Every type whose schema the document takes from msgspec; json_body adds the webhook bodies.
_BODY_TYPES: list[Any] = [AnyEnvelope, AppendBatch]


@dataclass
class RawSchema(BaseSchemaObject):
    """A schema object that is already a JSON document."""

    document: dict[str, Any]

    def to_schema(self) -> dict[str, Any]:
        """Return the document as it is."""
        return self.document


@cache
def _schemas(types: tuple[Any, ...]) -> tuple[tuple[dict[str, Any], ...], dict[str, Any]]:
    schemas, components = msgspec.json.schema_components(types, ref_template=COMPONENTS)
    return schemas, components


def body_schema(body_type: Any) -> dict[str, Any]:
    """Return the schema of a body, referring to the shared components."""
    types = tuple(_BODY_TYPES)
    return _schemas(types)[0][types.index(body_type)]


def append_body_schema() -> dict[str, Any]:
    """Return the schema of the append body: one envelope, or a batch of them."""
    return {"anyOf": [body_schema(AnyEnvelope), body_schema(AppendBatch)]}


def shared_components() -> dict[str, Any]:
    """Return the component schemas of every body decoded by hand."""
    return _schemas(tuple(_BODY_TYPES))[1]


class SharedSchemas(JsonRenderPlugin):
    """Serve ``openapi.json`` with the bodies' schemas among the components."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """Return the document, its components completed with the shared schemas."""
        return self.render_json(request, with_shared_components(openapi_schema))


def with_shared_components(document: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of ``document`` whose components include the bodies' schemas.

    A name both define is one type (the vocabulary's ``Money`` in answers and in envelopes):
    msgspec's schema of it is kept, the one the decoder enforces.
    """
    components = document.get("components", {})
    schemas = {**components.get("schemas", {}), **shared_components()}
    return {**document, "components": {**components, "schemas": dict(sorted(schemas.items()))}}


def json_body(body_type: Any, description: str, required: bool = True) -> type[Operation]:
    """Return an operation class that documents a body the handler decodes itself."""
    _BODY_TYPES.append(body_type)

    @dataclass
    class BodyOperation(Operation):
        def __post_init__(self) -> None:
            self.request_body = RequestBody(
                content={
                    "application/json": OpenAPIMediaType(
                        schema=cast(Schema, RawSchema(body_schema(body_type)))
                    )
                },
                description=description,
                required=required,
            )

    return BodyOperation


DEMO_DATASET = Path(__file__).parent.parent / "demo_data" / "zhipu-2023.jsonl"


def _correction_example(report: dict[str, Any]) -> dict[str, Any]:
    data = {**report["data"], "round_name": report["data"]["round_name"] + " (first close)"}
    return {
        "event_id": "5b0e2d8a-6c1f-4e3b-9a7d-8c2f1e0d9b46",
        "type": "event_corrected",
        "effective_date": report["effective_date"],
        "source": {"name": "Data desk", "published_at": "2023-10-24T08:00:00Z"},
        "data": {"target_event_id": report["event_id"], "data": data},
    }


def _retraction_example(target_event_id: str) -> dict[str, Any]:
    return {
        "event_id": "0f7d3c52-9a41-4f6e-b0c8-2d5e7a1b9c34",
        "type": "event_retracted",
        "effective_date": "2023-10-20",
        "source": {"name": "Data desk", "published_at": "2023-10-24T09:00:00Z"},
        "data": {"target_event_id": target_event_id, "reason": "entered twice by mistake"},
    }


def _rank_example(target_event_id: str) -> dict[str, Any]:
    return {
        "event_id": "3a1e9b4c-57d2-4c8e-9f60-1b2d3c4e5f61",
        "type": "report_ranked",
        "effective_date": "2023-10-24",
        "source": {"name": "Data desk", "published_at": "2023-10-24T10:00:00Z"},
        "data": {
            "target_event_id": target_event_id,
            "rank": "preferred",
            "reason": "the company's own statement",
        },
    }


@cache
def append_examples() -> dict[str, Example]:
    """One example per event type, from the demo's public reports; and a batch."""
    found: dict[str, dict[str, Any]] = {}
    by_id: dict[str, dict[str, Any]] = {}
    with DEMO_DATASET.open("rb") as lines:
        for line in lines:
            envelope = msgspec.json.decode(line)
            by_id[envelope["event_id"]] = envelope
            if b"null" not in line:  # the document drops nulls, which would change the event
                found.setdefault(envelope["type"], envelope)
    # the amendments shown amend the reports shown, so that the examples fit together
    found.setdefault("event_corrected", _correction_example(found["round_announced"]))
    found.setdefault("event_retracted", _retraction_example(found["round_announced"]["event_id"]))
    found.setdefault("report_ranked", _rank_example(found["valuation_reported"]["event_id"]))
    examples = {
        name: Example(summary=name.replace("_", " "), value=value) for name, value in found.items()
    }
    batch = [found["company_registered"], found["valuation_reported"]]
    examples["batch"] = Example(summary="a batch, appended all or none", value={"events": batch})
    return examples


@dataclass
class AppendOperation(Operation):
    """``POST /events``: one envelope, or ``{"events": [...]}``."""

    def __post_init__(self) -> None:
        body = cast(Schema, RawSchema(append_body_schema()))
        self.request_body = RequestBody(
            content={
                "application/json": OpenAPIMediaType(
                    schema=body, examples=cast(Any, append_examples())
                )
            },
            description='One envelope, or {"events": [envelope, ...]} appended all or none.',
            required=True,
        )
