"""Deciding what each queued append does: pure logic, no I/O.

The writer reads what a group of queued requests refers to (the head, their event ids, the
targets of corrections, the versions of their streams) and then plans the requests one by one,
in queue order; the write that follows takes place only if the head is still the one planned
on (events/commit.py). Each request is judged on its own against the state left by the requests
before it in the same transaction, so a conflict fails only its own request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Protocol

import msgspec

from events.chain import canonical_json, chain, event_bytes, format_instant
from events.coherence import check_coherent
from events.decoding import convert_payload
from events.errors import (
    ConflictError,
    FieldError,
    InvalidEventError,
    LedgerError,
    UnprocessableEventError,
)
from events.records import PreparedEvent, Receipt
from events.streams import AMENDMENT_TYPES, EVENT_RETRACTED, REPORT_RANKED
from events.vocabulary import EventCorrected, stream_of_payload


@dataclass(frozen=True, slots=True)
class KnownEvent:
    """An event already in the log (or accepted earlier in this transaction)."""

    event_id: uuid.UUID
    type: str
    stream: str
    root_type: str
    fingerprint: bytes
    receipt: Receipt | None
    root_id: uuid.UUID | None = None  # for an amendment, the fact at the bottom of its chain

    @property
    def root(self) -> uuid.UUID:
        """Return the id of the fact this event is or amends."""
        return self.root_id or self.event_id


@dataclass(frozen=True, slots=True)
class Row:
    """One event ready to insert."""

    position: int
    event_id: uuid.UUID
    stream: str
    stream_version: int
    type: str
    effective_date: dt.date
    source: str
    data: str
    metadata: str | None
    target_event_id: uuid.UUID | None
    hash: bytes
    root_event_id: uuid.UUID | None
    fact: str | None = None
    # The canonical encoding the hash chains (and the Merkle tree's leaf hashes), when known:
    # the notary of the process that committed the row hashes its leaf without reading it back.
    canonical: bytes | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer to one request: receipts, and whether anything new was appended."""

    receipts: list[Receipt]
    appended: bool


@dataclass
class GroupState:
    """The log as this transaction sees it, advanced by each accepted request."""

    position: int
    hash: bytes
    recorded_at: dt.datetime
    known: dict[uuid.UUID, KnownEvent]
    versions: dict[str, int]
    rows: list[Row] = field(default_factory=list)
    # Of the events loaded (and appended since), those a retraction targets.
    retracted: set[uuid.UUID] = field(default_factory=set)

    @property
    def head(self) -> tuple[int, bytes]:
        """Return the head this state stands on: position and hash."""
        return self.position, self.hash

    def stack_on(self, previous: GroupState) -> None:
        """Plan on top of ``previous``, a group whose write may not have committed yet.

        The snapshot this state was read from may predate that write, so the previous group's
        head, its events and the versions of its streams replace what the snapshot says.
        A snapshot already past the previous group (another process appended since) is left
        alone: the conditional write will notice and the group is planned again.
        """
        if self.position > previous.position:
            return
        self.position, self.hash = previous.position, previous.hash
        self.recorded_at = after(previous.recorded_at, self.recorded_at)
        for row in previous.rows:
            self.known[row.event_id] = previous.known[row.event_id]
            self.versions[row.stream] = previous.versions[row.stream]
        self.retracted |= previous.retracted


TICK = dt.timedelta(microseconds=1)


def after(previous: dt.datetime, clock: dt.datetime) -> dt.datetime:
    """Return the recorded_at of the next group: the clock, but strictly after the previous.

    Strictly: an answer "as known at" the head's recorded_at must never gain an event later,
    so no later group may share that instant (projections/answers.py relies on it).
    """
    return max(clock, previous + TICK)


def fingerprint(
    type: str,
    effective_date: dt.date,
    source: str,
    data: str,
    metadata: str | None,
    fact: str | None = None,
) -> bytes:
    """Return a digest of an event's content, which an idempotent retry must repeat."""
    text = f"{type}\n{effective_date.isoformat()}\n{source}\n{data}\n{metadata}\n{fact}"
    return hashlib.sha256(text.encode()).digest()


@dataclass(slots=True)
class _Planned:
    event: PreparedEvent
    stream: str
    version: int
    root_type: str
    fingerprint: bytes
    root_id: uuid.UUID | None


@dataclass(slots=True)
class _Pending:
    """What the request's earlier events add to the state, before the request is accepted."""

    known: dict[uuid.UUID, KnownEvent] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    retracted: set[uuid.UUID] = field(default_factory=set)


def plan_request(
    events: list[PreparedEvent], is_batch: bool, state: GroupState
) -> Outcome | LedgerError:
    """Plan one request against ``state``; on success advance ``state`` and return receipts."""
    planned: list[_Planned] = []
    replayed: list[Receipt] = []
    pending = _Pending()
    for i, event in enumerate(events):
        try:
            item = _plan_event(event, state, pending)
        except LedgerError as error:
            return error.prefixed(f"events[{i}]") if is_batch else error
        if isinstance(item, Receipt):
            replayed.append(item)
            continue
        planned.append(item)
        pending.known[event.event_id] = _known(item, None)
        if event.type == EVENT_RETRACTED and event.target_event_id is not None:
            pending.retracted.add(event.target_event_id)
    if replayed and planned:
        ids = ", ".join(str(r.event_id) for r in replayed)
        return ConflictError(
            f"the batch mixes events already recorded ({ids}) with new ones; "
            "resubmit it without the recorded events or with all of them unchanged"
        )
    if replayed:
        return Outcome(replayed, appended=False)
    return Outcome([_commit(item, state) for item in planned], appended=True)


def _plan_event(event: PreparedEvent, state: GroupState, pending: _Pending) -> _Planned | Receipt:
    stream, root_type, root_id = event.stream, event.type, None
    if event.target_event_id is not None:
        stream, root_type, root_id = _resolve_amendment(event, state, pending)
    assert stream is not None
    digest = fingerprint(
        event.type, event.effective_date, event.source, event.data, event.metadata, event.fact
    )
    existing = state.known.get(event.event_id) if event.client_chose_id else None
    if existing is not None:
        if existing.fingerprint != digest or existing.receipt is None:
            raise ConflictError(
                f"event_id {event.event_id} is already recorded with different content",
                [FieldError("event_id", "already recorded with different content")],
            )
        return existing.receipt
    current = pending.versions.get(stream, state.versions.get(stream, 0))
    if event.expected_version is not None and event.expected_version != current:
        raise ConflictError(
            f"stream {stream} is at version {current}, not {event.expected_version}",
            [FieldError("expected_version", f"the stream is at version {current}")],
            {"stream": stream, "current_version": current},
        )
    pending.versions[stream] = current + 1
    return _Planned(event, stream, current + 1, root_type, digest, root_id)


def _resolve_amendment(
    event: PreparedEvent, state: GroupState, pending: _Pending
) -> tuple[str, str, uuid.UUID]:
    """Check an amendment or rank against its target; return its stream, root type and root."""
    target_id = event.target_event_id
    assert target_id is not None
    target = pending.known.get(target_id) or state.known.get(target_id)
    if target is None:
        raise _unprocessable("data.target_event_id", f"no event {target_id} is in the ledger")
    _refuse_amending_withdrawn(target, state.retracted | pending.retracted)
    if event.type == EVENT_RETRACTED:
        return target.stream, EVENT_RETRACTED, target.root
    if event.type == REPORT_RANKED:
        if target.type in AMENDMENT_TYPES:
            raise _unprocessable(
                "data.target_event_id", f"{target_id} is a {target.type}: only reports are ranked"
            )
        return target.stream, REPORT_RANKED, target.root
    try:
        payload = convert_payload(target.root_type, event.replacement, "data.data")
    except InvalidEventError as error:
        raise UnprocessableEventError(
            f"a correction of a {target.root_type} event must carry a {target.root_type} "
            f"payload: {error.detail}",
            error.errors,
        ) from None
    check_coherent(payload, "data.data")
    if stream_of_payload(payload) != target.stream:
        raise _unprocessable("data.data", f"a correction cannot move a fact out of {target.stream}")
    event.data = canonical_json(
        EventCorrected(
            target_event_id=target_id, data=_as_dict(payload), effective_date=event.replacement_date
        )
    )
    return target.stream, target.root_type, target.root


def _refuse_amending_withdrawn(target: KnownEvent, retracted: set[uuid.UUID]) -> None:
    """Refuse an amendment that could change nothing: its target or its fact is withdrawn.

    The answers ignore every amendment of a retracted fact, and a retracted correction stays
    withdrawn, so accepting one would answer 201 for an event without effect.
    """
    if target.type == EVENT_RETRACTED:
        message = f"{target.event_id} is a retraction, which cannot be amended"
    elif target.event_id in retracted:
        message = f"{target.event_id} is retracted already, and cannot be amended"
    elif target.root in retracted:
        message = f"the fact {target.root} that {target.event_id} amends is retracted"
    else:
        return
    raise _unprocessable("data.target_event_id", message + " (append the fact again instead)")


def _known(item: _Planned, receipt: Receipt | None) -> KnownEvent:
    event = item.event
    return KnownEvent(
        event.event_id,
        event.type,
        item.stream,
        item.root_type,
        item.fingerprint,
        receipt,
        item.root_id,
    )


def _as_dict(payload: object) -> dict[str, object]:
    result: dict[str, object] = msgspec.to_builtins(payload)
    return result


class Envelope(Protocol):
    """What an event brings to its stored row (a PreparedEvent, or the import's WireEvent)."""

    @property
    def event_id(self) -> uuid.UUID: ...
    @property
    def type(self) -> str: ...
    @property
    def effective_date(self) -> dt.date: ...
    @property
    def source(self) -> str: ...
    @property
    def data(self) -> str: ...
    @property
    def metadata(self) -> str | None: ...


def planned_bytes(
    event: Envelope, position: int, stream: str, version: int, recorded_at: dt.datetime
) -> bytes:
    """Return the canonical encoding of ``event`` stored at ``position`` (what the chain and
    the Merkle tree's leaf hash)."""
    return event_bytes(
        position=position,
        event_id=event.event_id,
        stream=stream,
        stream_version=version,
        type=event.type,
        schema_version=1,
        effective_date=event.effective_date,
        recorded_at=recorded_at,
        source=event.source,
        data=event.data,
        metadata=event.metadata,
    )


def _commit(item: _Planned, state: GroupState) -> Receipt:
    event = item.event
    position = state.position + 1
    canonical = planned_bytes(event, position, item.stream, item.version, state.recorded_at)
    digest = chain(state.hash, canonical)
    receipt = Receipt(
        event_id=event.event_id,
        stream=item.stream,
        stream_version=item.version,
        position=position,
        recorded_at=format_instant(state.recorded_at),
        hash=digest.hex(),
    )
    state.rows.append(
        Row(
            position,
            event.event_id,
            item.stream,
            item.version,
            event.type,
            event.effective_date,
            event.source,
            event.data,
            event.metadata,
            event.target_event_id,
            digest,
            item.root_id if event.target_event_id is not None else None,
            event.fact,
            canonical,
        )
    )
    state.position, state.hash = position, digest
    state.versions[item.stream] = item.version
    state.known[event.event_id] = _known(item, receipt)
    if event.type == EVENT_RETRACTED and event.target_event_id is not None:
        state.retracted.add(event.target_event_id)
    return receipt


def _unprocessable(field_path: str, message: str) -> UnprocessableEventError:
    return UnprocessableEventError(f"{field_path}: {message}", [FieldError(field_path, message)])
