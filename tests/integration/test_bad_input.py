"""Malformed requests: each is a 4xx problem+json naming what is wrong, and changes nothing.

One database, one set of tokens and one running app serve the whole table (module-scoped
fixtures): every case is rejected, so no case can disturb another, and cloning a database per
case would only make the table slow.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests import factories as f
from tests.support import Tokens, client_for, count_events

MIB = 1024 * 1024


@dataclass(frozen=True)
class Case:
    """One malformed request and the answer it must get."""

    id: str
    status: int
    body: Any = None  # encoded as JSON unless ``raw`` is given
    raw: bytes | None = None
    field: str | None = None  # a path the problem's ``errors`` must name
    method: str = "POST"
    path: str = "/events"
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    token: str | None = "write"  # an attribute of Tokens, "" for no header, or a literal header

    def content(self) -> bytes | None:
        if self.raw is not None:
            return self.raw
        return None if self.body is None else json.dumps(self.body).encode()


def with_data(envelope: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """Return ``envelope`` with its ``data`` changed."""
    return {**envelope, "data": {**envelope["data"], **changes}}


def without(mapping: dict[str, Any], *keys: str) -> dict[str, Any]:
    """Return ``mapping`` without ``keys``."""
    return {k: v for k, v in mapping.items() if k not in keys}


COMPANY = f.company_registered("acme")
ROUND = f.round_announced("acme")
VALUATION = f.valuation_reported("acme")
RULE = f.export_rule("chips")
APPROVAL = {
    "type": "regulatory_approval",
    "effective_date": "2023-08-31",
    "source": {"name": "CAC"},
    "data": {
        "company_id": "acme",
        "jurisdiction": "CN",
        "authority": "CAC",
        "scope": "generative-ai",
        "status": "granted",
    },
}


def money(value: Any, currency: str = "USD") -> dict[str, Any]:
    return {"value": value, "currency": currency}


def batch(*envelopes: dict[str, Any]) -> dict[str, Any]:
    """Return a batch of copies of ``envelopes``, each with an event id of its own."""
    return {"events": [{**e, "event_id": str(uuid.uuid4())} for e in envelopes]}


DUPLICATE_ID = str(uuid.uuid4())

CASES = [
    # wrong types
    Case("type-not-a-string", 400, {**COMPANY, "type": 7}, field="type"),
    Case("date-not-a-string", 400, {**COMPANY, "effective_date": 20231020}, field="effective_date"),
    Case("source-not-an-object", 400, {**COMPANY, "source": "SCMP"}, field="source"),
    Case("data-not-an-object", 400, {**COMPANY, "data": ["acme"]}, field="data"),
    Case("data-null", 400, {**COMPANY, "data": None}, field="data"),
    Case("event-id-not-a-uuid", 400, {**COMPANY, "event_id": "42"}, field="event_id"),
    Case("metadata-not-an-object", 400, {**COMPANY, "metadata": [1]}, field="metadata"),
    Case(
        "investors-not-a-list", 400, with_data(ROUND, investors="alibaba"), field="data.investors"
    ),
    Case(
        "lead-not-a-bool",
        400,
        with_data(ROUND, investors=[{"investor_id": "alibaba", "lead": "yes"}]),
        field="data.investors[0].lead",
    ),
    Case(
        "restricted-items-not-a-list",
        400,
        with_data(RULE, restricted_items="A100"),
        field="data.restricted_items",
    ),
    Case("status-not-in-enum", 400, with_data(APPROVAL, status="pending"), field="data.status"),
    Case("basis-not-in-enum", 400, with_data(VALUATION, basis="guessed"), field="data.basis"),
    Case("rule-action-not-in-enum", 400, with_data(RULE, action="paused"), field="data.action"),
    # unknown event type, missing fields
    Case("unknown-type", 400, {**COMPANY, "type": "company_renamed"}, field="type"),
    Case("missing-type", 400, without(COMPANY, "type"), field="type"),
    Case("missing-effective-date", 400, without(COMPANY, "effective_date"), field="effective_date"),
    Case("missing-source", 400, without(COMPANY, "source"), field="source"),
    Case(
        "missing-source-name",
        400,
        {**COMPANY, "source": {"url": "https://x.org"}},
        field="source.name",
    ),
    Case("missing-data", 400, without(COMPANY, "data"), field="data"),
    Case(
        "missing-jurisdiction",
        400,
        {**COMPANY, "data": without(COMPANY["data"], "jurisdiction")},
        field="data.jurisdiction",
    ),
    Case(
        "missing-amount",
        400,
        {**ROUND, "data": without(ROUND["data"], "amount")},
        field="data.amount",
    ),
    # codes
    Case(
        "unknown-currency",
        400,
        with_data(ROUND, amount=money("1", "ABC")),
        field="data.amount.currency",
    ),
    Case(
        "lower-case-currency",
        400,
        with_data(ROUND, amount=money("1", "usd")),
        field="data.amount.currency",
    ),
    Case("unknown-country", 400, with_data(COMPANY, jurisdiction="ZZ"), field="data.jurisdiction"),
    Case("alpha-3-country", 400, with_data(COMPANY, jurisdiction="CHN"), field="data.jurisdiction"),
    Case(
        "lower-case-country", 400, with_data(COMPANY, jurisdiction="cn"), field="data.jurisdiction"
    ),
    Case(
        "unknown-target-jurisdiction",
        400,
        with_data(RULE, target_jurisdictions=["CN", "XX"]),
        field="data.target_jurisdictions[1]",
    ),
    # dates and instants
    Case(
        "impossible-date", 400, {**COMPANY, "effective_date": "2023-02-30"}, field="effective_date"
    ),
    Case(
        "impossible-founding-date",
        400,
        with_data(COMPANY, founded_on="2023-13-01"),
        field="data.founded_on",
    ),
    Case(
        "date-with-time",
        400,
        {**COMPANY, "effective_date": "2023-10-20T00:00:00Z"},
        field="effective_date",
    ),
    Case(
        "instant-without-offset",
        400,
        {**COMPANY, "source": {"name": "SCMP", "published_at": "2023-10-21T08:00:00"}},
        field="source.published_at",
    ),
    # money and decimals
    Case("float-money", 400, with_data(ROUND, amount=money(2.5e9)), field="data.amount.value"),
    Case("int-money", 400, with_data(ROUND, amount=money(2500000000)), field="data.amount.value"),
    Case(
        "float-amount-usd", 400, with_data(ROUND, amount_usd=342000000.0), field="data.amount_usd"
    ),
    Case("negative-money", 400, with_data(ROUND, amount=money("-1")), field="data.amount.value"),
    Case(
        "zero-money", 400, with_data(VALUATION, valuation=money("0")), field="data.valuation.value"
    ),
    Case(
        "zero-point-zero-money",
        400,
        with_data(VALUATION, valuation=money("0.00")),
        field="data.valuation.value",
    ),
    Case("exponent-decimal", 400, with_data(ROUND, amount=money("1e5")), field="data.amount.value"),
    Case(
        "exponent-amount-usd", 400, with_data(ROUND, amount_usd="3.42E8"), field="data.amount_usd"
    ),
    Case("plus-signed-money", 400, with_data(ROUND, amount=money("+5")), field="data.amount.value"),
    Case(
        "leading-zero-money", 400, with_data(ROUND, amount=money("007")), field="data.amount.value"
    ),
    Case(
        "amount-usd-differs-in-usd-round",
        400,
        with_data(ROUND, amount=money("100"), amount_usd="101"),
        field="data.amount_usd",
    ),
    Case(
        "investor-listed-twice",
        400,
        with_data(ROUND, investors=[{"investor_id": "alibaba"}, {"investor_id": "alibaba"}]),
        field="data.investors[1].investor_id",
    ),
    # unknown fields
    Case("unknown-top-level-field", 400, {**COMPANY, "company": "acme"}, field="company"),
    Case(
        "unknown-data-field",
        400,
        with_data(COMPANY, website="https://acme.ai"),
        field="data.website",
    ),
    Case(
        "unknown-money-field",
        400,
        with_data(ROUND, amount={"value": "1", "currency": "USD", "fx": "7.3"}),
        field="data.amount.fx",
    ),
    Case(
        "unknown-source-field",
        400,
        {**COMPANY, "source": {"name": "x", "author": "y"}},
        field="source.author",
    ),
    # slugs and texts
    Case("upper-case-slug", 400, with_data(COMPANY, company_id="Acme"), field="data.company_id"),
    Case("slug-too-long", 400, with_data(COMPANY, company_id="a" * 65), field="data.company_id"),
    Case(
        "slug-leading-hyphen", 400, with_data(COMPANY, company_id="-acme"), field="data.company_id"
    ),
    Case("slug-with-space", 400, with_data(VALUATION, company_id="ac me"), field="data.company_id"),
    Case(
        "slug-with-trailing-newline",
        400,
        with_data(COMPANY, company_id="acme\n"),
        field="data.company_id",
    ),
    Case(
        "bad-investor-slug",
        400,
        with_data(ROUND, investors=[{"investor_id": "Alibaba_Group"}]),
        field="data.investors[0].investor_id",
    ),
    Case("empty-name", 400, with_data(COMPANY, name=""), field="data.name"),
    Case(
        "ftp-source-url",
        400,
        {**COMPANY, "source": {"name": "x", "url": "ftp://x.org"}},
        field="source.url",
    ),
    # envelope fields
    Case(
        "negative-expected-version",
        400,
        {**COMPANY, "expected_version": -1},
        field="expected_version",
    ),
    Case(
        "string-expected-version",
        400,
        {**COMPANY, "expected_version": "0"},
        field="expected_version",
    ),
    Case(
        "oversized-metadata",
        400,
        {**COMPANY, "metadata": {str(i): i for i in range(33)}},
        field="metadata",
    ),
    # batches
    Case("empty-batch", 400, {"events": []}, field="events"),
    Case("batch-over-1000-events", 400, batch(*[COMPANY] * 1001), field="events"),
    Case("batch-not-a-list", 400, {"events": COMPANY}, field="events"),
    Case(
        "batch-with-one-bad-event",
        400,
        batch(COMPANY, with_data(COMPANY, jurisdiction="ZZ")),
        field="events[1].data.jurisdiction",
    ),
    Case(
        "batch-with-one-float-money",
        400,
        batch(COMPANY, VALUATION, with_data(ROUND, amount=money(1.5))),
        field="events[2].data.amount.value",
    ),
    Case("batch-item-not-an-object", 400, {"events": [COMPANY, 5]}, field="events[1]"),
    Case("batch-with-unknown-field", 400, {**batch(COMPANY), "atomic": True}, field="atomic"),
    Case(
        "duplicate-event-id-in-batch",
        400,
        {
            "events": [
                {**COMPANY, "event_id": DUPLICATE_ID},
                {**VALUATION, "event_id": DUPLICATE_ID},
            ]
        },
        field="events[1].event_id",
    ),
    # not an envelope at all
    Case("malformed-json", 400, raw=b'{"type": "company_registered",'),
    Case("empty-body", 400, raw=b""),
    Case(
        "invalid-utf8", 400, raw=json.dumps(COMPANY).encode()[:-1] + b', "metadata": {"a": "\xff"}}'
    ),
    Case(
        "nested-too-deeply",
        400,
        raw=b'{"metadata": {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
    ),
    Case(
        "lone-surrogate",
        400,
        raw=json.dumps(COMPANY).encode()[:-1] + b', "metadata": {"a": "\\udc00"}}',
    ),
    Case("nan-literal", 400, raw=json.dumps(COMPANY).encode()[:-1] + b', "metadata": {"a": NaN}}'),
    Case("json-array-body", 400, [COMPANY], field="body"),
    Case("json-string-body", 400, "company_registered", field="body"),
    Case("json-null-body", 400, raw=b"null", field="body"),
    Case("json-number-body", 400, 42, field="body"),
    Case("oversize-body", 413, raw=b'{"pad": "' + b"x" * MIB + b'"}', field="body"),
    # tokens
    Case("no-authorization-header", 401, COMPANY, token=""),
    Case("not-a-bearer-token", 401, COMPANY, token="Basic dXNlcjpwYXNz"),
    Case("empty-bearer-token", 401, COMPANY, token="Bearer "),
    Case("unknown-token", 401, COMPANY, token="Bearer ldg_000000000000_nothing"),
    Case("token-with-a-wrong-secret", 401, COMPANY, token="wrong-secret"),
    Case("read-token-cannot-append", 403, COMPANY, token="read"),
    Case("webhooks-token-cannot-append", 403, COMPANY, token="webhooks"),
    Case("bad-token-is-refused-before-the-body-is-judged", 401, raw=b"{", token="Bearer nope"),
    # reading with bad query parameters
    Case("negative-after", 400, method="GET", params={"after": -1}, token="read", field="after"),
    Case(
        "after-not-a-number", 400, method="GET", params={"after": "x"}, token="read", field="after"
    ),
    Case("zero-limit", 400, method="GET", params={"limit": 0}, token="read", field="limit"),
    Case("limit-over-1000", 400, method="GET", params={"limit": 1001}, token="read", field="limit"),
    Case(
        "unknown-type-filter",
        400,
        method="GET",
        params={"type": "nope"},
        token="read",
        field="type",
    ),
    Case("event-id-not-a-uuid-in-path", 404, method="GET", path="/events/42", token="read"),
    Case("unknown-event", 404, method="GET", path=f"/events/{uuid.uuid4()}", token="read"),
    Case(
        "after-beyond-bigint",
        400,
        method="GET",
        params={"after": 2**63},
        token="read",
        field="after",
    ),
    Case(
        "after-version-beyond-integer",
        400,
        method="GET",
        path="/streams/company:acme/events",
        params={"after_version": 2**31},
        token="read",
        field="after_version",
    ),
    Case("method-not-allowed", 405, COMPANY, method="PUT"),
    Case(
        "text-with-nul",
        400,
        {**COMPANY, "data": {**COMPANY["data"], "name": "Zhipu\u0000AI"}},
        field="data.name",
    ),
    Case(
        "metadata-with-nul",
        400,
        {**COMPANY, "metadata": {"actor": "a\u0000b"}},
        field="metadata",
    ),
    Case(
        "stream-filter-with-nul",
        400,
        method="GET",
        params={"stream": "company:a\x00b"},
        token="read",
        field="stream",
    ),
    Case(
        "stream-filter-not-a-stream",
        400,
        method="GET",
        params={"stream": "anything"},
        token="read",
        field="stream",
    ),
    Case(
        "stream-path-with-nul",
        400,
        method="GET",
        path="/streams/company:a%00b/events",
        token="read",
        field="stream",
    ),
]


@pytest.fixture(scope="module")
async def client(shared_url: str, shared_tokens: Tokens) -> AsyncIterator[AsyncTestClient[Any]]:
    """Run one app for the whole table, with one valid event already in the log."""
    async with client_for(shared_url) as client:
        seeded = await client.post(
            "/events", json=f.company_registered("acme"), headers=shared_tokens.header("write")
        )
        assert seeded.status_code == 201, seeded.text
        yield client


def authorization(case: Case, tokens: Tokens) -> dict[str, str]:
    if not case.token:
        return {}
    if case.token == "wrong-secret":
        return {"Authorization": f"Bearer {tokens.write[:-4]}AAAA"}
    if hasattr(tokens, case.token):
        return tokens.header(case.token)
    return {"Authorization": case.token}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_malformed_request_is_a_problem_and_changes_nothing(
    case: Case, client: AsyncTestClient[Any], shared_url: str, shared_tokens: Tokens
) -> None:
    # given
    before = await count_events(shared_url)
    headers = {"Content-Type": "application/json", **authorization(case, shared_tokens)}
    # when
    response = await client.request(
        case.method, case.path, content=case.content(), params=case.params, headers=headers
    )
    # then
    assert response.status_code == case.status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == case.status
    assert problem["title"] and problem["detail"], problem
    if case.field is not None:
        fields = [error["field"] for error in problem.get("errors", [])]
        assert case.field in fields, problem
        assert all(error["message"] for error in problem["errors"]), problem
    if case.status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert await count_events(shared_url) == before


def test_the_table_is_large_and_its_ids_unique() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)
