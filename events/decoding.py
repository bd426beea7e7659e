"""Strict decoding of request bodies into envelopes, with errors that name each field."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from events.coherence import check_coherent
from events.errors import FieldError, InvalidEventError, InvalidRequestError, MalformedRequestError
from events.exactness import check_exact, has_float
from events.nesting import MAX_DEPTH, deepest_path, too_deep
from events.vocabulary import (
    COUNTRY_PATTERN,
    CURRENCY_PATTERN,
    DECIMAL_PATTERN,
    EVENT_TYPES,
    PAYLOAD_TYPES,
    SLUG_PATTERN,
    TEXT_PATTERN,
    URL_PATTERN,
    AnyEnvelope,
    AppendBatch,
    EventCorrected,
    Fact,
)

T = TypeVar("T")

_envelope_decoder = msgspec.json.Decoder(AnyEnvelope)
_batch_decoder = msgspec.json.Decoder(AppendBatch)
_shallow_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])

_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_REGEX = re.compile(r"Expected `str` matching regex '(?P<pattern>.*)'$")
_NAMED_FIELD = re.compile(r"^Object (?:contains unknown|missing required) field `(?P<name>[^`]+)`$")
# The field our own checks name before ": ", relative to the struct: "amount_usd",
# "target_jurisdictions[1]", "investors[2].investor_id".
_OWN_FIELD = re.compile(r"[a-z_]+(?:\[[0-9]+\])?(?:\.[a-z_]+)*")
# A number where a decimal string is expected (also where the string is optional).
_NUMBER_FOR_STRING = re.compile(r"^Expected `str(?: \| null)?`, got `(?:float|int)`")
_FRIENDLY_PATTERNS = {
    TEXT_PATTERN: "must not contain the NUL character (U+0000)",
    SLUG_PATTERN: "must be a slug: lower-case letters, digits and hyphens, at most 64 characters",
    DECIMAL_PATTERN: 'must be a positive exact decimal written as a string, such as "341.5"',
    CURRENCY_PATTERN: 'must be a three-letter ISO 4217 currency code such as "USD"',
    COUNTRY_PATTERN: 'must be a two-letter ISO 3166-1 alpha-2 code such as "CN"',
    URL_PATTERN: "must be an http or https URL",
}


def decode_append_body(body: bytes) -> tuple[list[AnyEnvelope], bool]:
    """Decode one envelope or ``{"events": [...]}``; return the envelopes and whether a batch."""
    # msgspec reports invalid UTF-8 inside a string as UnicodeDecodeError and nesting deeper
    # than the interpreter's recursion limit as RecursionError; left alone they would surface
    # as a 500. Only the free-form fields can nest that deep (typed ones fail at once).
    try:
        envelopes, is_batch = _decode(body)
    except UnicodeDecodeError as exc:
        raise MalformedRequestError(f"the body is not valid UTF-8: {exc.reason}") from None
    except RecursionError:
        # the envelope's own structure is at most four levels above its free-form fields
        raise _too_deep(_free_form_field(deepest_path(body, MAX_DEPTH + 4))) from None
    _refuse_what_would_not_be_kept(body, envelopes, is_batch)
    return envelopes, is_batch


def _refuse_what_would_not_be_kept(body: bytes, envelopes: list[AnyEnvelope], batch: bool) -> None:
    """Refuse free-form JSON nested too deep, values that would be rounded, contradictions.

    In that order: the depth bound makes the later walks safe.
    """
    for i, envelope in enumerate(envelopes):
        prefix = f"events[{i}]." if batch else ""
        if envelope.metadata is not None and too_deep(envelope.metadata):
            raise _too_deep(f"{prefix}metadata")
        if isinstance(envelope.data, EventCorrected) and too_deep(envelope.data.data):
            raise _too_deep(f"{prefix}data.data")
    check_exact(body, [_may_be_rounded(e) for e in envelopes], batch)
    for i, envelope in enumerate(envelopes):
        check_coherent(envelope.data, f"events[{i}].data" if batch else "data")


def _may_be_rounded(envelope: AnyEnvelope) -> bool:
    """Whether an envelope has a value that may have been rounded on decoding."""
    if envelope.source.published_at is not None:
        return True
    return envelope.metadata is not None and has_float(envelope.metadata)


def decode_request(body: bytes, decoder: msgspec.json.Decoder[T]) -> T:
    """Decode a request body of any other kind, with the same field-path errors."""
    try:
        return decoder.decode(body)
    except UnicodeDecodeError as exc:
        raise MalformedRequestError(f"the body is not valid UTF-8: {exc.reason}") from None
    except RecursionError:
        raise MalformedRequestError("the body is nested too deeply") from None
    except msgspec.ValidationError as exc:
        raise _invalid(exc, InvalidRequestError) from None
    except msgspec.DecodeError as exc:
        raise MalformedRequestError(f"the body is not valid JSON: {exc}") from None


def _decode(body: bytes) -> tuple[list[AnyEnvelope], bool]:
    try:
        return [_envelope_decoder.decode(body)], False
    except msgspec.ValidationError as single_error:
        if not _looks_like_batch(body):
            raise _invalid(single_error) from None
    except msgspec.DecodeError as exc:
        raise MalformedRequestError(f"the body is not valid JSON: {exc}") from None
    try:
        return list(_batch_decoder.decode(body).events), True
    except msgspec.ValidationError as batch_error:
        raise _invalid(batch_error) from None


def convert_payload(event_type: str, data: Any, path: str) -> Fact:
    """Validate a replacement payload against ``event_type``; errors are placed under ``path``."""
    try:
        return msgspec.convert(data, PAYLOAD_TYPES[event_type], strict=True)
    except msgspec.ValidationError as exc:
        error = to_field_error(str(exc))
        field = f"{path}.{error.field}" if error.field else path
        raise InvalidEventError(
            f"{field}: {error.message}", [FieldError(field, error.message)]
        ) from None


def to_field_error(text: str) -> FieldError:
    """Turn a msgspec validation message into a field path and a readable message."""
    match = _AT.match(text)
    message = match["message"] if match else text
    path = (match["path"] or "") if match else ""
    path = path.removeprefix(".")
    # Our own checks (in __post_init__) say "field: problem" about a field of the struct at path.
    head, sep, rest = message.partition(": ")
    if sep and _OWN_FIELD.fullmatch(head):
        path = f"{path}.{head}" if path else head
        message = rest
    named = _NAMED_FIELD.match(message)
    if named:  # "Object contains unknown field `x`" is about x, not about the object
        path = f"{path}.{named['name']}" if path else named["name"]
    regex = _REGEX.match(message)
    if regex:  # msgspec shows the pattern with its backslashes doubled
        pattern = regex["pattern"].replace("\\\\", "\\")
        message = _FRIENDLY_PATTERNS.get(pattern, message)
    field = path.rsplit(".", 1)[-1]
    if field in {"value", "amount_usd"} and _NUMBER_FOR_STRING.match(message):
        message += " (decimals are written as strings)"
    if field == "type" and message.startswith("Invalid value "):
        message = f"unknown event type {message.removeprefix('Invalid value ')}; "
        message += f"one of {', '.join(EVENT_TYPES)}"
    return FieldError(path, message)


def _looks_like_batch(body: bytes) -> bool:
    try:
        top = _shallow_decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return False
    return "events" in top and "type" not in top


def _free_form_field(path: list[str | int]) -> str:
    """Name the free-form field a too deep value is in: ``metadata`` or ``data.data``."""
    prefix = ""
    if len(path) > 1 and path[0] == "events" and isinstance(path[1], int):
        prefix, path = f"events[{path[1]}].", path[2:]
    if path[:1] == ["metadata"]:
        return f"{prefix}metadata"
    if path[:2] == ["data", "data"]:
        return f"{prefix}data.data"
    return f"{prefix}{path[0]}" if path and isinstance(path[0], str) and path[0] else "body"


def _too_deep(field: str) -> InvalidEventError:
    message = f"is nested more than {MAX_DEPTH} levels deep (objects and lists count alike)"
    return InvalidEventError(f"{field}: {message}", [FieldError(field, message)])


def _invalid(
    exc: msgspec.ValidationError, kind: type[InvalidRequestError] = InvalidEventError
) -> InvalidRequestError:
    error = to_field_error(str(exc))
    # An error about the whole body (not an object at all) is reported on the field "body".
    where = error.field or "body"
    return kind(f"{where}: {error.message}", [FieldError(where, error.message)])
