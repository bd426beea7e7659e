"""The client's own types mirror the service's wire types, and its retries keep their bounds."""

from __future__ import annotations

import datetime as dt
import email.utils
from decimal import Decimal

import httpx
import msgspec
import pytest

from events import records, vocabulary
from projections import company, disputes, provenance, rules
from service import client_requests, client_types, schemas
from service.http import problems

MIRRORS = [
    (client_types.SourceRef, provenance.SourceRef),
    (client_types.Alternative, provenance.Alternative),
    (client_types.Money, vocabulary.Money),
    (client_types.DatedValuation, company.DatedValuation),
    (client_types.RoundInvestor, company.RoundInvestor),
    (client_types.Round, company.Round),
    (client_types.Approval, company.Approval),
    (client_types.Restriction, company.Restriction),
    (client_types.Rule, rules.RuleState),
    (client_types.Company, schemas.Company),
    (client_types.CompanySummary, schemas.CompanySummary),
    (client_types.CompanyPage, schemas.CompanyPage),
    (client_types.Valuations, schemas.Valuations),
    (client_types.Holding, schemas.Holding),
    (client_types.Portfolio, schemas.Portfolio),
    (client_types.ExportRules, schemas.ExportRules),
    (client_types.FieldDispute, disputes.FieldDispute),
    (client_types.DisputedFact, disputes.DisputedFact),
    (client_types.CompanyDisputeList, schemas.CompanyDisputeList),
    (client_types.SourceCount, schemas.SourceCount),
    (client_types.SourcePage, schemas.SourcePage),
    (client_types.Receipt, records.Receipt),
    (client_types.Receipts, schemas.BatchReceipts),
    (client_types.Source, vocabulary.Source),
    (client_types.Event, records.RecordedEvent),
    (client_types.EventPage, schemas.EventPage),
    (client_types.Digest, schemas.Digest),
    (client_requests.Problem, problems.Problem),
    (client_requests.FieldProblem, problems.FieldProblem),
]


def _names(struct: type[msgspec.Struct]) -> list[str]:
    return sorted(f.encode_name for f in msgspec.structs.fields(struct))


@pytest.mark.parametrize(("mine", "theirs"), MIRRORS, ids=lambda t: t.__qualname__)
def test_each_client_type_has_the_fields_of_the_service_type(
    mine: type[msgspec.Struct], theirs: type[msgspec.Struct]
) -> None:
    assert _names(mine) == _names(theirs)


def test_money_and_times_decode_as_python_values() -> None:
    # given a valuation as the service encodes it
    wire = (
        b'{"value":"1000000000.5","currency":"USD","effective_date":"2023-09-15",'
        b'"event_id":"3c0e1a52-7d4b-4a8e-9f61-2b7d9c5e8a10","sources":[{"event_id":'
        b'"3c0e1a52-7d4b-4a8e-9f61-2b7d9c5e8a10","name":"SCMP","url":null,'
        b'"published_at":"2023-10-20T08:00:00Z","recorded_at":"2023-10-21T09:30:00.123456Z"}]}'
    )
    # when the client decodes it
    valuation = msgspec.json.decode(wire, type=client_types.DatedValuation)
    # then money is exact and times are times
    assert valuation.value == Decimal("1000000000.5")
    assert valuation.effective_date == dt.date(2023, 9, 15)
    recorded = valuation.sources[0].recorded_at
    assert recorded == dt.datetime(2023, 10, 21, 9, 30, 0, 123456, tzinfo=dt.UTC)


def _answer(status: int, retry_after: str | None = None) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return httpx.Response(status, headers=headers)


@pytest.mark.parametrize(
    ("answer", "attempt", "waited", "expected"),
    [
        (_answer(503, "2"), 1, 0.0, 2.0),  # as the service asks
        (_answer(429, "1"), 2, 1.0, 1.0),
        (_answer(503), 1, 0.0, 0.5),  # no Retry-After: backoff from 0.5 s
        (_answer(503), 3, 1.5, 2.0),  # doubling
        (_answer(503, "2"), 4, 0.0, None),  # every attempt spent
        (_answer(503, "20"), 1, 15.0, None),  # the wait would pass max_wait
        (_answer(500, "1"), 1, 0.0, None),  # not a status to retry
        (_answer(200, "1"), 1, 0.0, None),
    ],
)
def test_the_policy_waits_as_asked_within_its_bounds(
    answer: httpx.Response, attempt: int, waited: float, expected: float | None
) -> None:
    policy = client_requests.RetryPolicy(attempts=4, max_wait=30.0, backoff=0.5)
    assert policy.wait(answer, attempt, waited) == expected


def test_retry_after_as_an_http_date_is_the_seconds_until_it() -> None:
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    seconds = client_requests.retry_after(_answer(503, email.utils.format_datetime(when)))
    assert seconds is not None and 25 < seconds <= 30
    assert client_requests.retry_after(_answer(503, "soon")) is None


def test_appends_carry_an_event_id_of_their_own_so_a_retry_is_idempotent() -> None:
    given = "3c0e1a52-7d4b-4a8e-9f61-2b7d9c5e8a10"
    mine = msgspec.json.decode(client_requests.append({"type": "x"}).body or b"")
    kept = msgspec.json.decode(client_requests.append({"event_id": given}).body or b"")
    assert len(mine["event_id"]) == 36 and kept["event_id"] == given
