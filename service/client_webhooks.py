"""The client's webhook verifier: check a delivery's Standard Webhooks signature and age."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Mapping

import msgspec

from service.client_types import Event

DEFAULT_TOLERANCE_SECONDS = 300  # Standard Webhooks: refuse messages older or newer than this
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class WebhookMessage(msgspec.Struct, frozen=True):
    """What a webhook delivers: the event's type, its recorded_at, and the event."""

    type: str
    timestamp: str
    data: Event


class WebhookVerificationError(Exception):
    """A webhook that is not authentic, or too old or too new to be accepted."""


def verify_webhook(
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> WebhookMessage:
    """Check a webhook's signature (any of the ones given) and age; return its message.

    ``headers`` are the request's headers (any case). Raises WebhookVerificationError when the
    signature does not match the secret, or the timestamp is further than the tolerance from
    now, which stops an old message from being replayed.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        message_id = lower["webhook-id"]
        stamp = lower["webhook-timestamp"]
        signatures = lower["webhook-signature"].split()
    except KeyError:
        raise WebhookVerificationError("missing webhook headers") from None
    if not _TIMESTAMP.fullmatch(stamp):
        raise WebhookVerificationError("the webhook-timestamp is not a Unix time in seconds")
    timestamp = int(stamp)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise WebhookVerificationError("the message's timestamp is too old or too new")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    for candidate in signatures:
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            return msgspec.json.decode(body, type=WebhookMessage)
    raise WebhookVerificationError("no signature matches the secret")
