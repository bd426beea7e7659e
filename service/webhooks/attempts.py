"""One delivery attempt: the message signed, sent once, and what it came to."""

from __future__ import annotations

import datetime as dt
import logging
import time

import aiohttp

from service.http import metrics
from service.settings import Settings
from service.webhooks.outbox import Claimed, DeliveryOutcome
from service.webhooks.policy import now, retry_after_seconds, retry_delay
from service.webhooks.signing import signature_header
from service.webhooks.targets import TargetError
from service.webhooks.transport import Sender

log = logging.getLogger(__name__)

# Each outcome's series, looked up once rather than by label on every send.
_OUTCOMES = {o: metrics.DELIVERIES.labels(o) for o in ("succeeded", "retrying", "failed")}


async def attempt(sender: Sender, claimed: Claimed, settings: Settings) -> DeliveryOutcome:
    """Send a claimed delivery once; return its outcome, with when to try again if it failed."""
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": claimed.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(
            claimed.keys, claimed.message_id, timestamp, claimed.body
        ),
    }
    attempted_at = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    code, error, retry_after = await _post(sender, claimed, headers, settings)
    duration_ms = (time.perf_counter() - started) * 1000
    succeeded = error is None
    metrics.DELIVERY_SECONDS.observe(duration_ms / 1000)
    retry_in = None
    if not succeeded and code != 410:
        retry_in = retry_delay(claimed.in_series, settings.webhook_retry_schedule, retry_after)
    _OUTCOMES["succeeded" if succeeded else "retrying" if retry_in is not None else "failed"].inc()
    return DeliveryOutcome(
        claimed.delivery_id,
        claimed.attempt,
        succeeded,
        code,
        error,
        attempted_at,
        duration_ms,
        retry_in,
    )


async def _post(
    sender: Sender, claimed: Claimed, headers: dict[str, str], settings: Settings
) -> tuple[int | None, str | None, float | None]:
    """Post the message; return the status (if any), the error (if any) and its Retry-After."""
    code: int | None = None
    try:
        code, retry_header = await sender.post(claimed.url, claimed.body, headers)
        if not 200 <= code < 300:
            return code, f"the endpoint answered {code}", retry_after_seconds(retry_header, now())
        return code, None, None
    except TargetError as exc:
        return code, f"refused: {exc}", None
    except TimeoutError:
        return code, f"no complete answer within {settings.webhook_timeout_seconds:g} s", None
    except aiohttp.ClientError as exc:
        return code, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, None
    except Exception as exc:  # whatever else went wrong, the attempt failed and is recorded
        log.warning("webhook send failed unexpectedly: %r", exc)
        return code, f"the message could not be sent ({type(exc).__name__})", None
