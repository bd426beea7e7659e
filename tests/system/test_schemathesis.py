"""Hostile input generated from the service's own OpenAPI document, for every operation.

Schemathesis generates valid and invalid requests for each operation (well over 2,000 in all)
and sends them to a real ``ledger serve`` holding the demo's events and a webhook. Each answer
must: not be a server error, be problem+json with status, title and detail when it is an error,
and match the document (status code, content type, body schema, headers). Requests without a
token must be refused.

One 5xx is part of the contract and allowed: a query whose ``min_position`` the ledger has not
reached answers 503 with Retry-After after a bounded wait (API.md, point-in-time queries).
The generator cannot know which correction targets exist, which ISO dates are real or which
URLs resolve, so "a schema-valid request must be accepted" is not asked.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.demo import DATASET
from tests.support import ServerProcess, ledger, make_tokens

EXAMPLES_PER_OPERATION = 150
MINIMUM_CASES = 2000
sent: list[int] = []  # one entry per generated request


def no_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """No 5xx, but for a min_position not reached yet (503 with Retry-After, by contract)."""
    if response.status_code < 500:
        return None
    body = response.json() if response.content else {}
    if (
        response.status_code == 503
        and "min_position" in (case.query or {})
        and "has not reached position" in body.get("detail", "")
        and "retry-after" in {k.lower() for k in response.headers}
    ):
        return None
    raise AssertionError(f"server error {response.status_code}: {response.text[:500]}")


def errors_are_problems(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every error is application/problem+json with status, title and detail."""
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", "")
    if isinstance(content_type, list):
        content_type = content_type[0]
    assert content_type.startswith("application/problem+json"), content_type
    body = json.loads(response.content)
    assert body["status"] == response.status_code
    assert body["title"] and body["detail"]
    return None


@pytest.fixture
def api(shared_url: str, ledger_processes: Callable[..., ServerProcess]) -> Iterator[Any]:
    """A server with the demo's events, a webhook endpoint, and the token to call it with."""
    loaded = ledger(shared_url, "import", str(DATASET))
    assert loaded.returncode == 0, loaded.stderr
    server = ledger_processes(
        shared_url,
        LEDGER_WEBHOOK_ALLOW_PRIVATE="1",
        LEDGER_WEBHOOK_RETRY_SCHEDULE="60s",
        LEDGER_RATE_LIMIT="0",
    )
    server.start()
    import asyncio

    tokens = asyncio.run(make_tokens(shared_url))
    headers = tokens.header("all")
    created = httpx.post(
        f"{server.base_url}/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=headers
    )
    assert created.status_code == 201, created.text
    loaded_schema = schemathesis.openapi.from_url(f"{server.base_url}/schema/openapi.json")
    loaded_schema.config.headers = headers  # type: ignore[attr-defined]
    yield loaded_schema, headers
    server.terminate()


def test_every_operation_survives_generated_requests(api: Any) -> None:
    schema, headers = api
    checks = [
        no_server_error,
        errors_are_problems,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
        response_headers_conformance,
        negative_data_rejection,
        missing_required_header,
        ignored_auth,
    ]
    failures: list[str] = []
    # A subscription streams without end: a generated call could never read its answer whole.
    operations = [
        op
        for op in (result.ok() for result in schema.get_all_operations())
        if op.path != "/events/subscribe"
    ]
    assert len(operations) >= 20
    labels = {operation.label for operation in operations}
    assert {"GET /sources", "GET /companies/{company_id}/disputes"} <= labels, labels
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(mode))
            @settings(
                max_examples=EXAMPLES_PER_OPERATION // 2,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,
                database=None,
            )
            def run(case: Any) -> None:
                sent.append(1)
                case.call_and_validate(headers=headers, checks=checks, timeout=15)

            try:
                run()
            except Unsatisfiable:  # nothing of the operation can be made invalid (no input)
                assert mode is GenerationMode.NEGATIVE, operation.label
            except Exception as exc:  # every operation is tried; all failures are reported
                failures.append(f"{operation.label} ({mode}): {exc}")
    assert not failures, "\n\n".join(failures)
    assert len(sent) >= MINIMUM_CASES, len(sent)
