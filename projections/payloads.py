"""Stored payloads decoded for the folds, without the checks they passed when appended."""

from __future__ import annotations

import types
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints

import msgspec

from events.vocabulary import PAYLOAD_TYPES, Fact


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
                gc=False,  # acyclic; held by the thousands, so kept out of the collector's walk
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


def unchecked(event_type: str) -> type[Fact]:
    """The payload type of ``event_type`` without its checks, as stored payloads decode."""
    mirror: type[Fact] = _stored(PAYLOAD_TYPES[event_type])
    return mirror


def decode_payload(event_type: str, data: bytes | str) -> Fact:
    """Decode a stored payload of ``event_type``."""
    result: Fact = _DECODERS[event_type].decode(data)
    return result
