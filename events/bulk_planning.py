"""Planning a bulk import's group of batches: pure, in file order, on the log's state.

Most lines are new facts: each gets the next position and its stream's next version, and its
hash is chained, with no more bookkeeping than that. Amendments (checked against their targets)
and events with an expected version go through the writer's own planner, as does a batch
partly recorded already (an import run again after it stopped), whose recorded events must be
unchanged. A batch is all or nothing: a refused line undoes what its batch planned.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from events.bulk_decoding import Batch, WireEvent, prepared_event
from events.chain import chain, event_bytes
from events.errors import LedgerError
from events.planning import GroupState, KnownEvent, Row, plan_request
from events.transfer import ImportLineError, at_line


def names(batches: list[Batch]) -> tuple[set[uuid.UUID], set[str]]:
    """Return the event ids (the events and their targets) and the streams batches name."""
    ids: set[uuid.UUID] = set()
    streams: set[str] = set()
    for _, events in batches:
        for event in events:
            ids.add(event.event_id)
            if event.target_event_id is not None:
                ids.add(event.target_event_id)
            if event.stream is not None:
                streams.add(event.stream)
    return ids, streams


@dataclass
class BulkPlan:
    """A group's plan, batch by batch: the rows (in ``state``), and how far it got."""

    state: GroupState
    recorded: set[uuid.UUID]  # the ids the log holds already, as the state was read
    accepted: set[uuid.UUID] = field(default_factory=set)  # planned so far (and stacked on)
    batches: int = 0  # planned, from the first
    lines: int = 0
    replayed: int = 0  # lines already in the log, unchanged
    refusal: ImportLineError | None = None
    seen: tuple[int, bytes] = field(init=False)  # the head it was planned on

    def __post_init__(self) -> None:
        self.seen = self.state.head

    def stack_on(self, previous: BulkPlan) -> None:
        """Plan on top of ``previous``, a group not committed yet when this state was read."""
        self.state.stack_on(previous.state)
        self.seen = self.state.head
        self.accepted.update(row.event_id for row in previous.state.rows)

    def add(self, numbers: list[int], events: list[WireEvent]) -> bool:
        """Plan the next batch; say whether it was planned (else the group ends before it).

        A batch ends the group when it repeats an event_id planned earlier in it, so that the
        repeat is checked against the log once the group is written; or when a line is refused.
        """
        ids = [event.event_id for event in events]
        if self.refusal is not None or not self.accepted.isdisjoint(ids):
            return False
        state = self.state
        mark = len(state.rows), state.position, state.hash
        try:
            if self.recorded.isdisjoint(ids):
                _plan_new(numbers, events, state)
            else:
                self.replayed += _plan_resumed(numbers, events, state, self.recorded)
        except ImportLineError as refusal:
            del state.rows[mark[0] :]
            state.position, state.hash = mark[1], mark[2]
            self.refusal = refusal
            return False
        self.accepted.update(ids)
        self.batches += 1
        self.lines += len(events)
        return True


def plan_group(batches: list[Batch], state: GroupState) -> BulkPlan:
    """Plan batches in order on ``state``, up to a refused line or a repeated event_id."""
    plan = BulkPlan(state, set(state.known))
    for numbers, events in batches:
        if not plan.add(numbers, events):
            break
    return plan


def _plan_new(numbers: list[int], events: list[WireEvent], state: GroupState) -> None:
    """Plan a batch of events none of which is recorded yet."""
    for number, event in zip(numbers, events, strict=True):
        if event.target_event_id is None and event.expected_version is None:
            _append(event, state)
            continue
        outcome = plan_request([prepared_event(event)], False, state)
        if isinstance(outcome, LedgerError):
            raise ImportLineError(number, outcome)


def _append(event: WireEvent, state: GroupState) -> None:
    """Give a new event the next position and its stream's next version; chain its hash."""
    stream = event.stream
    assert stream is not None  # only amendments take their stream from their target
    version = state.versions.get(stream, 0) + 1
    position = state.position + 1
    digest = chain(
        state.hash,
        event_bytes(
            position=position,
            event_id=event.event_id,
            stream=stream,
            stream_version=version,
            type=event.type,
            schema_version=1,
            effective_date=event.effective_date,
            recorded_at=state.recorded_at,
            source=event.source,
            data=event.data,
            metadata=event.metadata,
        ),
    )
    state.rows.append(
        Row(
            position,
            event.event_id,
            stream,
            version,
            event.type,
            event.effective_date,
            event.source,
            event.data,
            event.metadata,
            None,
            digest,
        )
    )
    state.position, state.hash = position, digest
    state.versions[stream] = version
    # What an amendment later in the group needs of its target. Never taken for a replay: a
    # repeated event_id ends the group (BulkPlan.add), and the log answers for it afterwards.
    state.known[event.event_id] = KnownEvent(
        event.event_id, event.type, stream, event.type, b"", None
    )


def _plan_resumed(
    numbers: list[int], events: list[WireEvent], state: GroupState, recorded: set[uuid.UUID]
) -> int:
    """Plan a batch partly recorded already, whose recorded events must be unchanged.

    The recorded events and the new ones are planned as two requests, as an import through
    the writer appends them. Return how many were recorded.
    """
    count = 0
    for known in (True, False):
        part = [
            (n, e)
            for n, e in zip(numbers, events, strict=True)
            if (e.event_id in recorded) == known
        ]
        if not part:
            continue
        outcome = plan_request([prepared_event(e) for _, e in part], True, state)
        if isinstance(outcome, LedgerError):
            raise at_line(outcome, [n for n, _ in part])
        if not outcome.appended:
            count += len(part)
    return count
