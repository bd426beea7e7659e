"""What the log hands back: receipts, recorded events and the envelope prepared for storage."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import msgspec
from msgspec import Struct

from events.chain import canonical_json
from events.errors import FieldError, InvalidEventError
from events.facts import envelope_fact
from events.vocabulary import (
    AnyEnvelope,
    EventCorrected,
    EventRetracted,
    ReportRanked,
    stream_of,
)


class Receipt(Struct, frozen=True, kw_only=True):
    """Proof that an event was appended: where it landed and its hash."""

    event_id: uuid.UUID
    stream: str
    stream_version: int
    position: int
    recorded_at: str
    hash: str


class RecordedEvent(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An event as the ledger shows it: the envelope plus what the server assigned.

    The one declaration of an event's wire shape: the service answers with it, an export is
    written and read back with it, and the client decodes it (re-typing only the JSON-valued
    fields, which it wants decoded rather than byte for byte).
    """

    event_id: uuid.UUID
    type: str
    stream: str
    stream_version: int
    position: int
    effective_date: dt.date
    recorded_at: str
    source: msgspec.Raw
    data: msgspec.Raw
    schema_version: int = 1
    metadata: msgspec.Raw | None = None
    hash: str = ""
    fact: str | None = None  # the fact key stored with it (events/facts.py); none: an amendment


class HistoryRow(Struct, frozen=True, gc=False):
    """One stored event as the folds need it: ids, times, the payload text and its source."""

    event_id: uuid.UUID
    type: str
    position: int
    recorded_at: dt.datetime
    effective_date: dt.date
    data: str
    source_name: str = ""
    source_url: str | None = None
    published_at: dt.datetime | None = None
    fact: str = ""  # the fact key stored with the event; empty: derived when folded


class StoredRow(Struct, frozen=True, kw_only=True):
    """The stored columns the chain covers, as read from the table or from an export."""

    position: int
    event_id: object
    stream: str
    stream_version: int
    type: str
    schema_version: int
    effective_date: object
    recorded_at: object
    source: str
    data: str
    metadata: str | None
    hash: bytes


@dataclass(slots=True)
class PreparedEvent:
    """An envelope reduced to what is stored, encoded once, before it joins the append queue."""

    event_id: uuid.UUID
    client_chose_id: bool
    type: str
    stream: str | None
    effective_date: dt.date
    source: str
    data: str
    metadata: str | None
    expected_version: int | None
    target_event_id: uuid.UUID | None
    replacement: dict[str, object] | None
    replacement_date: dt.date | None
    fact: str | None = None  # the key of the fact reported (events/facts.py), stored with it


def _refuse_nul(envelope: AnyEnvelope, index: int | None) -> None:
    """Refuse U+0000 in metadata: PostgreSQL cannot store it (typed text fields refuse it too)."""
    if envelope.metadata is None or not _has_nul(envelope.metadata):
        return
    field = "metadata" if index is None else f"events[{index}].metadata"
    message = "must not contain the NUL character (U+0000)"
    raise InvalidEventError(f"{field}: {message}", [FieldError(field, message)])


def _refuse_fact(index: int | None) -> None:
    """Refuse a ``fact`` on an amendment: it belongs to the fact of the report it amends."""
    field = "fact" if index is None else f"events[{index}].fact"
    message = "an amendment belongs to the fact of its target: omit fact"
    raise InvalidEventError(f"{field}: {message}", [FieldError(field, message)])


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def prepare(envelopes: list[AnyEnvelope], is_batch: bool) -> list[PreparedEvent]:
    """Encode each envelope canonically and refuse an event id used twice in one request."""
    prepared: list[PreparedEvent] = []
    seen: dict[uuid.UUID, int] = {}
    for i, envelope in enumerate(envelopes):
        data = envelope.data
        client_chose_id = envelope.event_id is not None
        event_id = envelope.event_id or uuid.uuid4()
        if event_id in seen:
            field = f"events[{i}].event_id" if is_batch else "event_id"
            message = f"{event_id} is also used by events[{seen[event_id]}]"
            raise InvalidEventError(f"{field}: {message}", [FieldError(field, message)])
        seen[event_id] = i
        _refuse_nul(envelope, i if is_batch else None)
        amends = EventCorrected | EventRetracted | ReportRanked
        target = data.target_event_id if isinstance(data, amends) else None
        if target is not None and envelope.fact is not None:
            _refuse_fact(i if is_batch else None)
        prepared.append(
            PreparedEvent(
                event_id=event_id,
                client_chose_id=client_chose_id,
                type=envelope.type,
                stream=stream_of(envelope),
                effective_date=envelope.effective_date,
                source=canonical_json(envelope.source),
                data=canonical_json(data),
                metadata=canonical_json(envelope.metadata)
                if envelope.metadata is not None
                else None,
                expected_version=envelope.expected_version,
                target_event_id=target,
                replacement=data.data if isinstance(data, EventCorrected) else None,
                replacement_date=data.effective_date if isinstance(data, EventCorrected) else None,
                fact=envelope_fact(envelope),
            )
        )
    return prepared
