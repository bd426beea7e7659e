"""A bulk import plans exactly what the group-commit writer would: same rows, same hashes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from typing import Any

from events.bulk_decoding import Batch, WireEvent, decode_group, prepared_event
from events.bulk_planning import plan_group
from events.chain import GENESIS
from events.planning import GroupState, plan_request
from events.records import PreparedEvent
from events.transfer import ImportLineError
from tests import factories

AT = dt.datetime(2024, 3, 1, 12, tzinfo=dt.UTC)


def lines(envelopes: list[dict[str, Any]]) -> list[tuple[int, bytes]]:
    return [(i, json.dumps(e).encode()) for i, e in enumerate(envelopes, start=1)]


def batches_of(envelopes: list[dict[str, Any]], size: int) -> list[Batch]:
    numbered = lines(envelopes)
    decoded = decode_group([numbered[i : i + size] for i in range(0, len(numbered), size)])
    assert decoded.refusal is None
    return decoded.unpacked()


def mixed_history() -> list[dict[str, Any]]:
    """Companies, valuations, rounds, corrections (one of a correction) and a retraction."""
    envelopes: list[dict[str, Any]] = []
    for n in range(6):
        company = f"co-{n}"
        registered = factories.company_registered(company)
        valuation = factories.valuation_reported(company, str(10**9 + n))
        envelopes += [registered, valuation, factories.round_announced(company)]
        value = {"value": str(2 * 10**9 + n), "currency": "USD"}
        data = {"company_id": company, "valuation": value, "basis": "reported"}
        correction = factories.corrected(valuation["event_id"], data)
        envelopes += [correction, factories.corrected(correction["event_id"], data)]
    envelopes.append(factories.retracted(envelopes[2]["event_id"]))
    envelopes.append(factories.valuation_reported("co-1", expected_version=5))
    return envelopes


def fresh_state() -> GroupState:
    return GroupState(0, GENESIS, AT, {}, {})


def test_the_wire_event_carries_every_field_of_a_prepared_event() -> None:
    assert WireEvent.__struct_fields__ == tuple(f.name for f in dataclasses.fields(PreparedEvent))


def test_a_bulk_plan_equals_the_writers_plan_of_the_same_batches() -> None:
    # given batches of a history with amendments and an expected version
    batches = batches_of(mixed_history(), size=7)
    # when the bulk planner and the writer's planner plan them
    bulk = fresh_state()
    plan = plan_group(batches, bulk)
    writer = fresh_state()
    for _, events in batches:
        prepared = [prepared_event(e) for e in events]
        assert not isinstance(plan_request(prepared, True, writer), Exception)
    # then they planned the same rows, chained to the same head
    assert plan.refusal is None and plan.batches == len(batches)
    assert bulk.rows == writer.rows
    assert bulk.head == writer.head


def test_a_refused_line_undoes_its_batch_and_ends_the_group() -> None:
    # given a history whose 12th line retracts an event that is nowhere
    envelopes = mixed_history()
    envelopes[11] = factories.retracted(str(uuid.uuid4()))
    batches = batches_of(envelopes, size=5)
    # when planned
    state = fresh_state()
    plan = plan_group(batches, state)
    # then the plan holds the two batches before the line's batch, and the refusal names it
    assert isinstance(plan.refusal, ImportLineError) and plan.refusal.line == 12
    assert plan.batches == 2 and [r.position for r in state.rows] == list(range(1, 11))
    assert state.head == (10, state.rows[-1].hash)


def test_an_event_id_repeated_in_a_group_ends_the_group_before_its_batch() -> None:
    # given a file whose third batch repeats an event of the first
    envelopes = mixed_history()[:9]
    envelopes.append(dict(envelopes[1]))
    batches = batches_of(envelopes, size=3)
    # when planned
    plan = plan_group(batches, fresh_state())
    # then the group ends before that batch: the log will answer for the repeat
    assert plan.refusal is None and plan.batches == 3 and plan.lines == 9


def test_batches_recorded_already_are_replayed_and_only_what_is_new_is_planned() -> None:
    # given a log that holds the first 20 events of a history (as the writer recorded them)
    envelopes = mixed_history()
    log = fresh_state()
    for _, events in batches_of(envelopes[:20], size=7):
        outcome = plan_request([prepared_event(e) for e in events], True, log)
        assert not isinstance(outcome, Exception)
    recorded = GroupState(log.position, log.hash, AT, dict(log.known), dict(log.versions))
    # when the whole history is planned on it
    plan = plan_group(batches_of(envelopes, size=7), recorded)
    # then the recorded events are replayed, and the rest follow them
    assert plan.refusal is None and plan.replayed == 20
    assert [r.position for r in recorded.rows] == list(range(21, len(envelopes) + 1))
