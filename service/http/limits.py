"""Admission: a bound on requests in flight, and a rate per token.

Beyond ``LEDGER_MAX_CONCURRENT_REQUESTS`` requests being handled at once, a new one is refused
at once with 503 and Retry-After instead of queueing without limit (``/health`` and
``/metrics`` are always answered, so operators can see what is happening). Each token may make
``LEDGER_RATE_LIMIT`` requests per second on average, in bursts of ``LEDGER_RATE_BURST``
(a token bucket per key, in each process); beyond, 429 with the seconds until the next one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from service.http.logs import begin
from service.http.problems import problem

ALWAYS_ANSWERED = ("/health", "/health/live", "/health/ready", "/metrics")


class InFlight(ASGIMiddleware):
    """Give a request its id (service/http/logs.py), then refuse it at once when too many are
    being handled already: one layer for both, in front of everything else.
    """

    scopes = (ScopeType.HTTP,)

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Count the request while it is handled; refuse it when over the bound."""
        begin(scope)
        if scope["path"] in ALWAYS_ANSWERED:  # neither refused nor counted
            await next_app(scope, receive, send)
            return
        if self.count >= self.limit:
            raise problem(
                503,
                "the service is handling as many requests as it may; retry shortly",
                title="Service overloaded",
            )
        self.count += 1
        try:
            await next_app(scope, receive, send)
        finally:
            self.count -= 1


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per key: ``rate`` requests per second, ``burst`` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = max(burst, 1)
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str) -> float | None:
        """Spend one request of ``key``; return None, or the seconds to wait if none is left."""
        if self.rate <= 0:
            return None
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return (1 - bucket.tokens) / self.rate


def too_many(wait: float) -> Exception:
    """The 429 problem for a token over its rate."""
    seconds = max(1, math.ceil(wait))
    return problem(
        429,
        f"this token made more requests than its limit allows; retry in {seconds} s",
        title="Too many requests",
        headers={"Retry-After": str(seconds)},
    )
