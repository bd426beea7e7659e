"""Planning refuses amendments of retracted events, also across groups planned on each other."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from events.decoding import decode_append_body
from events.errors import UnprocessableEventError
from events.planning import GroupState, KnownEvent, Outcome, plan_request
from events.records import PreparedEvent, prepare
from tests import factories as f

FACT = uuid.uuid4()
STREAM = "company:acme"
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def state() -> GroupState:
    """A snapshot that knows one valuation, not retracted."""
    known = KnownEvent(FACT, "valuation_reported", STREAM, "valuation_reported", b"", None)
    return GroupState(10, b"\x01" * 32, NOW, {FACT: known}, {STREAM: 2})


def prepared(envelope: dict[str, Any]) -> list[PreparedEvent]:
    envelopes, is_batch = decode_append_body(json.dumps(envelope).encode())
    return prepare(envelopes, is_batch)


def test_a_group_stacked_on_a_retraction_refuses_to_correct_its_fact() -> None:
    # given a group that retracts the fact, not yet committed
    previous = state()
    retraction = prepared(f.retracted(str(FACT)))
    assert isinstance(plan_request(retraction, False, previous), Outcome)
    # when the next group, read from a snapshot taken before it, is stacked on it
    following = state()
    following.stack_on(previous)
    correction = prepared(f.corrected(str(FACT), f.valuation_reported("acme")["data"]))
    outcome = plan_request(correction, False, following)
    # then its correction of the retracted fact is refused, naming the target
    assert isinstance(outcome, UnprocessableEventError)
    assert [e.field for e in outcome.errors] == ["data.target_event_id"]
    assert following.rows == []


def test_a_correction_of_a_correction_of_a_retracted_fact_is_refused() -> None:
    # given a correction of the fact, then the fact's retraction, in one state
    current = state()
    data = f.valuation_reported("acme")["data"]
    first = prepared(f.corrected(str(FACT), data))
    assert isinstance(plan_request(first, False, current), Outcome)
    assert isinstance(plan_request(prepared(f.retracted(str(FACT))), False, current), Outcome)
    # when the correction is corrected, then it is refused
    outcome = plan_request(prepared(f.corrected(str(first[0].event_id), data)), False, current)
    assert isinstance(outcome, UnprocessableEventError)
    assert "is retracted" in outcome.detail
