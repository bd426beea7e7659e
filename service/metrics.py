"""Prometheus metrics at ``/metrics``: requests (Litestar's plugin), appends, lag, deliveries.

Counters and histograms are updated where things happen; the lag gauges are read from the
database when Prometheus scrapes, so they are right whichever process does the work.
"""

from __future__ import annotations

from litestar.plugins.prometheus import PrometheusConfig
from prometheus_client import Counter, Gauge, Histogram

APPENDS = Counter(
    "ledger_appends_total",
    "Append requests by outcome: appended, replayed (idempotent retry) or refused (4xx/503)",
    ["outcome"],
)
APPEND_SECONDS = Histogram(
    "ledger_append_seconds",
    "Time from an append request's decoded body to its answer",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_EVENTS = Histogram(
    "ledger_append_batch_events",
    "Events per append request",
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000),
)
EVENTS_APPENDED = Counter("ledger_events_appended_total", "Events appended by this process")
HEAD = Gauge("ledger_head_position", "Position of the last event in the log")
PROJECTOR_LAG = Gauge("ledger_projector_lag_events", "Events the read models are behind the head")
DISPATCHER_LAG = Gauge(
    "ledger_webhook_lag_events", "Events the slowest enabled webhook cursor is behind the head"
)
PENDING = Gauge("ledger_webhook_pending_deliveries", "Deliveries waiting to be sent")
FAILING = Gauge("ledger_webhook_failing_endpoints", "Enabled endpoints whose last attempt failed")
DISABLED = Gauge("ledger_webhook_disabled_endpoints", "Disabled webhook endpoints")
DELIVERIES = Counter(
    "ledger_webhook_deliveries_total",
    "Delivery attempts made by this process, by outcome: succeeded, retrying or failed",
    ["outcome"],
)
DELIVERY_SECONDS = Histogram(
    "ledger_webhook_attempt_seconds",
    "Duration of delivery attempts",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15),
)


def request_metrics() -> PrometheusConfig:
    """Litestar's request metrics: count and duration per route (its path template)."""
    return PrometheusConfig(
        app_name="ledger",
        prefix="ledger_http",
        group_path=True,  # /companies/{company_id}, not one series per company
        exclude=["^/metrics$", "^/ui", "^/schema"],
    )
