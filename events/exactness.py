"""What is stored is what was sent: values the ledger would round are refused, not rounded.

Two kinds of value would otherwise change on the way in: an instant with more than six
fraction digits (the ledger keeps microseconds) and a metadata number a 64-bit float cannot
hold (``1.0000000000000000001`` would become ``1.0``). Both are refused with a 400 naming the
field, so a client learns at once rather than finding a different value later. Values that
survive unchanged (``0.1``, ``1.50`` as ``1.5``, integers of any size) are accepted as before.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import msgspec

from events.errors import FieldError, InvalidEventError

MAX_FRACTION_DIGITS = 6
_TOO_FINE = re.compile(rf"\.[0-9]{{{MAX_FRACTION_DIGITS + 1},}}")


class _SourceText(msgspec.Struct):
    published_at: str | None = None


class _EnvelopeText(msgspec.Struct):
    """The fields of an envelope that are checked, as sent: instants as text, exact numbers."""

    source: _SourceText | None = None
    metadata: dict[str, Any] | None = None


class _BatchText(msgspec.Struct):
    events: list[_EnvelopeText]


# Floats are decoded as Decimal, which keeps every digit that was sent.
_single = msgspec.json.Decoder(_EnvelopeText, float_hook=Decimal)
_batch = msgspec.json.Decoder(_BatchText, float_hook=Decimal)


def finer_than_microseconds(instant: str) -> bool:
    """Return whether an RFC 3339 instant has more fraction digits than the ledger keeps."""
    return _TOO_FINE.search(instant) is not None


def instant_message(instant: str) -> str:
    """Say why ``instant`` is refused and what to send instead."""
    return (
        f"{instant!r} has more than {MAX_FRACTION_DIGITS} fraction digits; the ledger keeps "
        "instants to the microsecond, so round it before sending"
    )


def check_exact(body: bytes, needs_check: list[bool], is_batch: bool) -> None:
    """Refuse an envelope of ``body`` whose instant or metadata number would be rounded.

    ``needs_check`` says, per envelope, whether it has anything that could be rounded (a
    ``published_at``, a metadata float); the body is read again only if one has.
    """
    if not any(needs_check):
        return
    envelopes = _batch.decode(body).events if is_batch else [_single.decode(body)]
    for i, envelope in enumerate(envelopes):
        prefix = f"events[{i}]." if is_batch else ""
        instant = envelope.source.published_at if envelope.source else None
        if instant is not None and finer_than_microseconds(instant):
            _refuse(f"{prefix}source.published_at", instant_message(instant))
        inexact = _inexact_number(envelope.metadata)
        if inexact is not None:
            _refuse(
                f"{prefix}metadata",
                f"the number {inexact} cannot be kept exactly (metadata numbers are 64-bit "
                "floats); send it as a string",
            )


def has_float(value: object) -> bool:
    """Return whether a decoded JSON value holds a non-integer number anywhere."""
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(has_float(v) for v in value)
    return False


def _inexact_number(value: object) -> Decimal | None:
    """Return the first number in ``value`` that a float would change, if any."""
    if isinstance(value, Decimal):
        return None if Decimal(repr(float(value))) == value else value
    if isinstance(value, dict):
        children = list(value.values())
    elif isinstance(value, list):
        children = value
    else:
        return None
    for child in children:  # metadata is at most 32 levels deep (events/nesting.py)
        found = _inexact_number(child)
        if found is not None:
            return found
    return None


def _refuse(field: str, message: str) -> None:
    raise InvalidEventError(f"{field}: {message}", [FieldError(field, message)])
