"""Names on the log: the streams (a category and an id) and the event types."""

from __future__ import annotations

COMPANIES = "company"  # the categories of streams
EXPORT_RULES = "export-rule"

# The LIKE pattern of every export-rule stream, written out as a constant in the statements
# that use it: the partial index events_export_rule_streams (migration 0004) is built on this
# very predicate, and the planner matches it only against the same literal.
RULE_STREAMS_LIKE = f"{EXPORT_RULES}:%"

COMPANY_REGISTERED = "company_registered"
ROUND_ANNOUNCED = "round_announced"
VALUATION_REPORTED = "valuation_reported"
REGULATORY_APPROVAL = "regulatory_approval"
EXPORT_RULE = "export_rule"
EVENT_CORRECTED = "event_corrected"
EVENT_RETRACTED = "event_retracted"
REPORT_RANKED = "report_ranked"
# The types that amend an earlier report rather than report a fact of their own.
AMENDMENT_TYPES = frozenset({EVENT_CORRECTED, EVENT_RETRACTED, REPORT_RANKED})


def company_stream(company_id: str) -> str:
    """Return the stream of a company's facts."""
    return f"{COMPANIES}:{company_id}"


def rule_stream(rule_id: str) -> str:
    """Return the stream of an export rule's facts."""
    return f"{EXPORT_RULES}:{rule_id}"


def category(stream: str) -> str:
    """Return the category of a stream (``company`` or ``export-rule``)."""
    return stream.partition(":")[0]


def stream_id(stream: str) -> str:
    """Return the id a stream is named after (the company's or the rule's)."""
    return stream.partition(":")[2]
