"""What the ledger said at an instant: facts with their corrections and retractions applied.

The rules, in the order events were recorded (position order), ignoring every event recorded
after ``known_at``:

- a fact enters with its payload and effective date;
- a correction replaces the payload of the fact it amends (directly, or through the correction
  it targets) and, when it gives one, its effective date; the latest correction wins;
- a retraction of a fact removes the fact, whatever corrections it had;
- a retraction of a correction withdraws that correction only: the fact reads as if the
  correction had never been recorded (the corrections before and after it still apply).
"""

from __future__ import annotations

import bisect
import datetime as dt
import types
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints

import msgspec

from events.records import HistoryRow
from events.streams import EVENT_CORRECTED, EVENT_RETRACTED
from events.vocabulary import PAYLOAD_TYPES, EventCorrected, EventRetracted, Fact


class LoggedEvent(msgspec.Struct, frozen=True, gc=False):
    """An event as the folds need it: the payload decoded, the times that order it."""

    event_id: uuid.UUID
    type: str
    position: int
    recorded_at: dt.datetime
    effective_date: dt.date
    data: Fact


class EffectiveFact(msgspec.Struct, frozen=True, gc=False):
    """A fact as it reads after its amendments."""

    event_id: uuid.UUID
    type: str
    position: int
    effective_date: dt.date
    data: Fact
    corrected_by: tuple[uuid.UUID, ...] = ()


@dataclass(slots=True)
class _Chain:
    original: LoggedEvent
    corrections: list[tuple[uuid.UUID, Fact, dt.date | None]] = field(default_factory=list)
    withdrawn: set[uuid.UUID] = field(default_factory=set)
    retracted: bool = False


def in_valid_time_order(fact: EffectiveFact) -> tuple[dt.date, uuid.UUID]:
    """Order facts by effective date; facts of the same day by event id.

    The tie-break is arbitrary but fixed, so an answer never depends on the order in which
    facts were recorded, only on the facts (a later report of the same day does not win for
    being later: to replace a fact, correct it).
    """
    return fact.effective_date, fact.event_id


class Timeline(msgspec.Struct, frozen=True, gc=False):
    """Amended facts in valid-time order, with their effective dates for finding a day."""

    facts: list[EffectiveFact]
    dates: list[dt.date]

    def until(self, as_of: dt.date) -> list[EffectiveFact]:
        """The facts effective on or before ``as_of``, in valid-time order."""
        return self.facts[: bisect.bisect_right(self.dates, as_of)]


def timeline(facts: Iterable[EffectiveFact]) -> Timeline:
    """Order amended facts in valid time (see ``in_valid_time_order``)."""
    ordered = sorted(facts, key=in_valid_time_order)
    return Timeline(ordered, [f.effective_date for f in ordered])


def _stored(tp: Any) -> Any:
    """The type ``tp`` without its checks: payloads read back were checked when appended.

    Each Struct becomes a subclass with the same fields, stripped of their constraints
    (patterns, lengths) and of ``__post_init__`` (code lists, cross-field rules); decoding a
    stored payload into it is about five times faster, and the result is still an instance
    of the vocabulary's class, so the folds see no difference.
    """
    origin = get_origin(tp)
    if origin is Annotated:
        return _stored(get_args(tp)[0])
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        mirror = _MIRRORS.get(tp)
        if mirror is None:
            hints = get_type_hints(tp)
            count = len(tp.__struct_defaults__)  # the defaults belong to the last fields
            tail = tp.__struct_fields__[len(tp.__struct_fields__) - count :]
            defaults = dict(zip(tail, tp.__struct_defaults__, strict=True))
            fields = [
                (name, _stored(hints[name]), defaults[name])
                if name in defaults
                else (name, _stored(hints[name]))
                for name in tp.__struct_fields__
            ]
            mirror = msgspec.defstruct(
                tp.__name__,
                fields,
                bases=(tp,),
                namespace={"__post_init__": _unchecked, "__module__": __name__},
                frozen=True,
                kw_only=True,
            )
            _MIRRORS[tp] = mirror
        return mirror
    if origin is list:
        return list[_stored(get_args(tp)[0])]  # type: ignore[misc]
    if origin is dict:
        key, value = get_args(tp)
        return dict[_stored(key), _stored(value)]  # type: ignore[misc]
    if origin in (Union, types.UnionType):
        return Union[tuple(_stored(arg) for arg in get_args(tp))]  # noqa: UP007
    return tp


def _unchecked(self: object) -> None:
    """Stored payloads were checked on the way in."""


_MIRRORS: dict[type, type] = {}
_DECODERS = {name: msgspec.json.Decoder(_stored(cls)) for name, cls in PAYLOAD_TYPES.items()}


def decode_payload(event_type: str, data: bytes | str) -> Fact:
    """Decode a stored payload of ``event_type``."""
    result: Fact = _DECODERS[event_type].decode(data)
    return result


def logged(rows: Iterable[HistoryRow]) -> list[LoggedEvent]:
    """Decode stored events for the folds."""
    return [
        LoggedEvent(
            r.event_id,
            r.type,
            r.position,
            r.recorded_at,
            r.effective_date,
            decode_payload(r.type, r.data),
        )
        for r in rows
    ]


def effective_facts(events: Iterable[LoggedEvent], known_at: dt.datetime) -> list[EffectiveFact]:
    """Return the facts as known at ``known_at``, amended, in position order of the originals."""
    originals: dict[uuid.UUID, LoggedEvent] = {}  # in position order
    chains: dict[uuid.UUID, _Chain] = {}  # only for facts that have amendments
    root_of: dict[uuid.UUID, uuid.UUID] = {}  # correction id -> the fact it amends
    for event in sorted(events, key=_position):
        if event.recorded_at > known_at:
            continue
        kind = event.type
        if kind == EVENT_CORRECTED:
            data = event.data
            assert isinstance(data, EventCorrected)
            root = root_of.get(data.target_event_id, data.target_event_id)
            original = originals.get(root)
            if original is None:
                continue  # its target is not known yet at this instant
            chain = chains.get(root) or chains.setdefault(root, _Chain(original))
            payload = msgspec.convert(data.data, type(original.data))
            chain.corrections.append((event.event_id, payload, data.effective_date))
            root_of[event.event_id] = root
        elif kind == EVENT_RETRACTED:
            retraction = event.data
            assert isinstance(retraction, EventRetracted)
            target = retraction.target_event_id
            if target in originals:
                chain = chains.get(target) or chains.setdefault(target, _Chain(originals[target]))
                chain.retracted = True
            elif target in root_of:
                chains[root_of[target]].withdrawn.add(target)
        else:
            originals[event.event_id] = event
    facts = []
    for event_id, event in originals.items():
        amended = chains.get(event_id)
        if amended is None:
            facts.append(
                EffectiveFact(
                    event_id, event.type, event.position, event.effective_date, event.data
                )
            )
        elif not amended.retracted:
            facts.append(_amended(amended))
    return facts


def _position(event: LoggedEvent) -> int:
    return event.position


def _amended(chain: _Chain) -> EffectiveFact:
    fact = chain.original
    data, effective_date, applied = fact.data, fact.effective_date, []
    for correction_id, payload, new_date in chain.corrections:
        if correction_id in chain.withdrawn:
            continue
        data, effective_date = payload, new_date or effective_date
        applied.append(correction_id)
    return EffectiveFact(
        fact.event_id, fact.type, fact.position, effective_date, data, tuple(applied)
    )
