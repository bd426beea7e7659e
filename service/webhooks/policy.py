"""When to try a delivery again: the retry schedule with jitter, and a receiver's Retry-After."""

from __future__ import annotations

import datetime as dt
import email.utils
import random

MAX_RETRY_AFTER = 86400.0  # a receiver asking for more waits a day at most


def retry_after_seconds(value: str | None, now: dt.datetime) -> float | None:
    """Parse a Retry-After header (seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER)


def retry_delay(
    attempt: int,
    schedule: tuple[float, ...],
    retry_after: float | None = None,
    jitter: float = 0.2,
) -> float | None:
    """Seconds to wait after attempt number ``attempt`` failed; None when it is the last.

    A delay, not an instant: the database adds it to its own clock when it records the outcome,
    the clock the claim compares due times with, so retries keep time however far this
    process's clock is from the database's.
    """
    if attempt > len(schedule):
        return None
    delay = schedule[attempt - 1] * random.uniform(1 - jitter, 1 + jitter)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def now() -> dt.datetime:
    """The current instant, in UTC."""
    return dt.datetime.now(dt.UTC)
