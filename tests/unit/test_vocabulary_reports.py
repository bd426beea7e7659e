"""Given an envelope naming its fact or ranking a report, then it decodes or names the bad field."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from events.decoding import decode_append_body
from events.errors import InvalidEventError
from events.facts import fact_key
from events.vocabulary import ReportRanked, RoundAnnounced
from tests import factories as f

TARGET = "6f1c1c1e-0000-4000-8000-000000000000"


def rank(**data: Any) -> dict[str, Any]:
    ranked = {"target_event_id": TARGET, "rank": "deprecated", "reason": "a rewrite of a wire"}
    return f.retracted(TARGET, type="report_ranked", data={**ranked, **data})


def field_of(body: dict[str, Any]) -> str:
    with pytest.raises(InvalidEventError) as caught:
        decode_append_body(json.dumps(body).encode())
    [error] = caught.value.errors
    return error.field


def test_a_rank_decodes_with_its_target_rank_and_reason() -> None:
    [event], _ = decode_append_body(json.dumps(rank()).encode())
    assert isinstance(event.data, ReportRanked)
    assert (str(event.data.target_event_id), event.data.rank) == (TARGET, "deprecated")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"rank": "best"}, "data.rank"),
        ({"reason": ""}, "data.reason"),
        ({"reason": None}, "data.reason"),
        ({"target_event_id": "not-a-uuid"}, "data.target_event_id"),
    ],
)
def test_a_bad_rank_is_refused_naming_the_field(data: dict[str, Any], field: str) -> None:
    assert field_of(rank(**data)) == field


def test_a_rank_without_a_reason_is_refused_naming_it() -> None:
    body = rank()
    del body["data"]["reason"]
    assert field_of(body) == "data.reason"


def test_an_envelope_may_name_its_fact_with_a_slug() -> None:
    [event], _ = decode_append_body(
        json.dumps({**f.round_announced("zhipu-ai"), "fact": "b3"}).encode()
    )
    assert event.fact == "b3"


@pytest.mark.parametrize("fact", ["Series B3", "b3\n", "-b3", "x" * 65, 3])
def test_a_fact_that_is_not_a_slug_is_refused_naming_it(fact: Any) -> None:
    assert field_of({**f.round_announced("zhipu-ai"), "fact": fact}) == "fact"


def test_round_keys_ignore_case_and_spaces_and_an_explicit_fact_replaces_them() -> None:
    day = dt.date(2023, 10, 20)
    one = RoundAnnounced(company_id="z", round_name="Series B3", amount=None, investors=[])
    other = RoundAnnounced(company_id="z", round_name=" series  b3", amount=None, investors=[])
    assert fact_key(one, day) == fact_key(other, day) == "round:seriesb3"
    assert fact_key(one, day, "b3") == "b3"
    assert fact_key(ReportRanked(target_event_id=TARGET, rank="normal", reason="x"), day) is None
