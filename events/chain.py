"""The hash chain: a canonical encoding of each stored event, chained by SHA-256.

``hash(n) = SHA-256(hash(n-1) || canonical(event n))`` with 32 zero bytes before position 1.
The canonical encoding is compact JSON with keys sorted, the JSON-valued columns embedded as
stored (they are written canonically in the first place), dates as ``YYYY-MM-DD`` and
``recorded_at`` in UTC with microseconds, so anyone can recompute the chain from an export.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from functools import lru_cache
from typing import Any

import msgspec

GENESIS = bytes(32)

_canonical = msgspec.json.Encoder(order="sorted")


def canonical_json(value: Any) -> str:
    """Encode a JSON-compatible value (or Struct) canonically: compact, keys sorted."""
    return _canonical.encode(value).decode()


@lru_cache(maxsize=256)  # a group's events share one recorded_at
def format_instant(instant: dt.datetime) -> str:
    """Format an instant as RFC 3339 in UTC with microseconds, the ledger's one spelling."""
    text = instant.astimezone(dt.UTC).isoformat(timespec="microseconds")
    return text.removesuffix("+00:00") + "Z"


def event_bytes(
    *,
    position: int,
    event_id: uuid.UUID,
    stream: str,
    stream_version: int,
    type: str,
    schema_version: int,
    effective_date: dt.date,
    recorded_at: dt.datetime,
    source: str,
    data: str,
    metadata: str | None,
) -> bytes:
    """Return the canonical encoding of a stored event (JSON columns given as stored text)."""
    return _canonical.encode(
        {
            "data": msgspec.Raw(data.encode()),
            "effective_date": effective_date.isoformat(),
            "event_id": str(event_id),
            "metadata": msgspec.Raw(metadata.encode()) if metadata is not None else None,
            "position": position,
            "recorded_at": format_instant(recorded_at),
            "schema_version": schema_version,
            "source": msgspec.Raw(source.encode()),
            "stream": stream,
            "stream_version": stream_version,
            "type": type,
        }
    )


def chain(previous: bytes, canonical: bytes) -> bytes:
    """Return the hash that links ``canonical`` to the hash before it."""
    return hashlib.sha256(previous + canonical).digest()
