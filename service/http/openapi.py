"""The OpenAPI description of what the service decodes by hand: request bodies.

``POST /events`` and the webhook endpoints read their bodies themselves (to report every error
with its field path), so Litestar cannot see their types. The schemas come from msgspec, which
decodes the bodies, so the document and the decoders cannot drift apart. Each is inlined into
its operation, because Litestar writes the document's component schemas from its own registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast

import msgspec
from litestar.openapi.spec import Example, OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.base import BaseSchemaObject

from events.vocabulary import AnyEnvelope, AppendBatch


@dataclass
class RawSchema(BaseSchemaObject):
    """A schema object that is already a JSON document."""

    document: dict[str, Any]

    def to_schema(self) -> dict[str, Any]:
        """Return the document as it is."""
        return self.document


@cache
def append_body_schema() -> dict[str, Any]:
    """Return the JSON schema of the append body, self-contained (Litestar owns the components)."""
    single = msgspec.json.schema(AnyEnvelope)
    batch = msgspec.json.schema(AppendBatch)
    definitions = {**single.pop("$defs", {}), **batch.pop("$defs", {})}
    return {"anyOf": [_inline(single, definitions), _inline(batch, definitions)]}


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    """Replace each ``$ref`` by its definition (the vocabulary has no recursive types)."""
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _inline(definitions[node["$ref"].rsplit("/", 1)[-1]], definitions)
    mapping = node.get("discriminator", {}).get("mapping")
    inlined = {key: _inline(value, definitions) for key, value in node.items()}
    if mapping is not None:  # its values are references, which no longer exist
        inlined["discriminator"] = {"propertyName": node["discriminator"]["propertyName"]}
    return inlined


def json_body(body_type: Any, description: str, required: bool = True) -> type[Operation]:
    """Return an operation class that documents a body the handler decodes itself."""

    @dataclass
    class BodyOperation(Operation):
        def __post_init__(self) -> None:
            schema = msgspec.json.schema(body_type)
            definitions = schema.pop("$defs", {})
            self.request_body = RequestBody(
                content={
                    "application/json": OpenAPIMediaType(
                        schema=cast(Schema, RawSchema(_inline(schema, definitions)))
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
