"""The bytes each leaf of the Merkle tree stands for: an event's canonical encoding.

The same bytes the hash chain covers (events/chain.py), computed from a stored row or from an
event as ``GET /events`` shows it, so that anyone holding the event can hash its leaf.
"""

from __future__ import annotations

import msgspec

from events.chain import canonical_json, event_bytes
from events.merkle import leaf_hash
from events.records import RecordedEvent, StoredRow


def stored_bytes(row: StoredRow) -> bytes:
    """Return the canonical encoding of a stored row."""
    return event_bytes(
        position=row.position,
        event_id=row.event_id,  # type: ignore[arg-type]
        stream=row.stream,
        stream_version=row.stream_version,
        type=row.type,
        schema_version=row.schema_version,
        effective_date=row.effective_date,  # type: ignore[arg-type]
        recorded_at=row.recorded_at,  # type: ignore[arg-type]
        source=row.source,
        data=row.data,
        metadata=row.metadata,
    )


def recorded_bytes(event: RecordedEvent) -> bytes:
    """Return the canonical encoding of an event as the ledger shows it (byte-exact fields)."""
    metadata = event.metadata
    if metadata is not None and bytes(metadata) == b"null":
        metadata = None
    return canonical_json(
        {
            "data": event.data,
            "effective_date": event.effective_date.isoformat(),
            "event_id": str(event.event_id),
            "metadata": metadata,
            "position": event.position,
            "recorded_at": event.recorded_at,
            "schema_version": event.schema_version,
            "source": event.source,
            "stream": event.stream,
            "stream_version": event.stream_version,
            "type": event.type,
        }
    ).encode()


def recorded_leaf(event: RecordedEvent) -> bytes:
    """Return the leaf hash of an event as the ledger shows it."""
    return leaf_hash(recorded_bytes(event))


class ShownEvent(RecordedEvent, frozen=True, kw_only=True):
    """An event as shown (GET /events, an export, a verified answer), read back byte for byte."""

    metadata: msgspec.Raw = msgspec.Raw(b"null")  # msgspec decodes no Raw inside a union


shown_events = msgspec.json.Decoder(list[ShownEvent])
shown_event = msgspec.json.Decoder(ShownEvent)
