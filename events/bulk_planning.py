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
from events.chain import chain
from events.errors import LedgerError
from events.planning import GroupState, KnownEvent, Row, after, plan_request, planned_bytes
from events.transfer import ImportLineError, at_line


def names(batches: list[Batch]) -> tuple[list[uuid.UUID], set[str]]:
    """Return the event ids (the events and their targets) and the streams batches name."""
    ids: list[uuid.UUID] = []
    streams: set[str] = set()
    for _, events in batches:
        for event in events:
            ids.append(event.event_id)
            if event.target_event_id is not None:
                ids.append(event.target_event_id)
            if event.stream is not None:
                streams.add(event.stream)
    return ids, streams


# Ids are keyed by their int in the plan's own sets: a UUID's hash is computed in Python, and
# a few hashes per line were a fifth of this process's time.


@dataclass
class BulkPlan:
    """A group's plan, batch by batch: the rows (in ``state``), and how far it got.

    ``state.known`` holds what the writer's planner needs: the events loaded from the log and
    the amendments planned. A plain new event is kept only as its row, in ``own``, and made
    known when an amendment names it.
    """

    state: GroupState
    recorded: set[int] = field(init=False)  # the ids the log holds already, as it was read
    own: dict[int, Row | None] = field(default_factory=dict)  # ids planned, with plain rows
    before: dict[int, Row | None] = field(default_factory=dict)  # the group stacked on
    batches: int = 0  # planned, from the first
    lines: int = 0
    replayed: int = 0  # lines already in the log, unchanged
    refusal: ImportLineError | None = None
    seen: tuple[int, bytes] = field(init=False)  # the head it was planned on

    def __post_init__(self) -> None:
        self.recorded = {event_id.int for event_id in self.state.known}
        self.seen = self.state.head

    def stack_on(self, previous: BulkPlan) -> None:
        """Plan on top of ``previous``, a group not committed yet when this state was read.

        A state read after the log moved past ``previous`` is left alone: the write will find
        the head elsewhere than planned, and plan again under the lock.
        """
        state, last = self.state, previous.state
        if state.position > last.position:
            return
        state.position, state.hash = last.position, last.hash
        state.recorded_at = after(last.recorded_at, state.recorded_at)
        state.versions.update(last.versions)
        for event_id, known in last.known.items():
            state.known.setdefault(event_id, known)
        self.before = previous.own
        self.seen = state.head

    def add(self, numbers: list[int], events: list[WireEvent]) -> bool:
        """Plan the next batch; say whether it was planned (else the group ends before it).

        A batch ends the group when it repeats an event_id planned earlier in it (or in the
        group it is stacked on), so that the repeat is checked against the log once those are
        written; or when a line is refused.
        """
        ids = [event.event_id.int for event in events]
        own, before = self.own, self.before
        if self.refusal is not None or any(i in own or i in before for i in ids):
            return False
        state = self.state
        mark = len(state.rows), state.position, state.hash
        try:
            if self.recorded.isdisjoint(ids):
                self._plan_new(numbers, events)
            else:
                for event in events:
                    if event.target_event_id is not None:
                        self._make_known(event.target_event_id)
                self.replayed += _plan_resumed(numbers, events, state, self.recorded)
                own.update(dict.fromkeys(ids))
        except ImportLineError as refusal:
            del state.rows[mark[0] :]
            state.position, state.hash = mark[1], mark[2]
            self.refusal = refusal
            return False
        self.batches += 1
        self.lines += len(events)
        return True

    def _plan_new(self, numbers: list[int], events: list[WireEvent]) -> None:
        """Plan a batch of events none of which is recorded yet."""
        state, own = self.state, self.own
        for number, event in zip(numbers, events, strict=True):
            if event.target_event_id is None and event.expected_version is None:
                own[event.event_id.int] = _append(event, state)
                continue
            if event.target_event_id is not None:
                self._make_known(event.target_event_id)
            outcome = plan_request([prepared_event(event)], False, state)
            if isinstance(outcome, LedgerError):
                raise ImportLineError(number, outcome)
            own[event.event_id.int] = None  # known to the planner by now

    def _make_known(self, event_id: uuid.UUID) -> None:
        """Make a plain event planned here (or in the group before) known to the planner."""
        if event_id in self.state.known:
            return
        row = self.own.get(event_id.int) or self.before.get(event_id.int)
        if row is not None:  # a fact, not an amendment: it is its own root
            known = KnownEvent(row.event_id, row.type, row.stream, row.type, b"", None)
            self.state.known[event_id] = known


def plan_group(batches: list[Batch], state: GroupState) -> BulkPlan:
    """Plan batches in order on ``state``, up to a refused line or a repeated event_id."""
    plan = BulkPlan(state)
    for numbers, events in batches:
        if not plan.add(numbers, events):
            break
    return plan


def _append(event: WireEvent, state: GroupState) -> Row:
    """Give a new event the next position and its stream's next version; chain its hash."""
    stream = event.stream
    assert stream is not None  # only amendments take their stream from their target
    version = state.versions.get(stream, 0) + 1
    position = state.position + 1
    digest = chain(state.hash, planned_bytes(event, position, stream, version, state.recorded_at))
    row = Row(
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
        None,  # a new fact is the root of its own chain
        event.fact,
    )
    state.rows.append(row)
    state.position, state.hash = position, digest
    state.versions[stream] = version
    return row


def _plan_resumed(
    numbers: list[int], events: list[WireEvent], state: GroupState, recorded: set[int]
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
            if (e.event_id.int in recorded) == known
        ]
        if not part:
            continue
        outcome = plan_request([prepared_event(e) for _, e in part], True, state)
        if isinstance(outcome, LedgerError):
            raise at_line(outcome, [n for n, _ in part])
        if not outcome.appended:
            count += len(part)
    return count
