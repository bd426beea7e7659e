"""Which fact a report is about: the key that groups the reports of one fact within a stream.

Each event of a company or export-rule stream is one source's report of a fact; the reports
that share a key (within one stream and one event type) are the same fact. The key is text:

- ``company_registered``: ``company:<company_id>``;
- ``round_announced``: ``round:<round_name>`` with the name case-folded and every whitespace
  character removed, so "Series B", "series b" and "SeriesB" are one round;
- ``valuation_reported``: ``valuation:<effective_date>`` (ISO 8601);
- ``regulatory_approval``: ``approval:<JSON array>`` of jurisdiction, scope, product (null when
  absent) and status, written compactly (``approval:["CN","chatbot",null,"granted"]``): JSON,
  so that no scope or product text can make two different approvals read alike;
- ``export_rule``: ``rule:<action>:<effective_date>``.

An envelope's explicit ``fact`` (a slug) replaces the derived key. Every derived key holds a
colon, which no slug does, so an explicit key never meets a derived one by accident.
Amendments (``event_corrected``, ``event_retracted``, ``report_ranked``) have no key of their
own: they belong to their target's fact, and a correction never moves its target to another
fact (the key is the original report's).
"""

from __future__ import annotations

import datetime as dt
import json

from events.vocabulary import (
    CompanyRegistered,
    ExportRule,
    RegulatoryApproval,
    RoundAnnounced,
    ValuationReported,
)


def fact_key(data: object, effective_date: dt.date, explicit: str | None = None) -> str | None:
    """Return the key of the fact a report is about, or None for an amendment."""
    if explicit:
        return explicit
    if isinstance(data, ValuationReported):
        return f"valuation:{effective_date.isoformat()}"
    if isinstance(data, RoundAnnounced):
        return f"round:{round_name_key(data.round_name)}"
    if isinstance(data, RegulatoryApproval):
        parts = [data.jurisdiction, data.scope, data.product, data.status]
        return "approval:" + json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    if isinstance(data, ExportRule):
        return f"rule:{data.action}:{effective_date.isoformat()}"
    if isinstance(data, CompanyRegistered):
        return f"company:{data.company_id}"
    return None


def round_name_key(name: str) -> str:
    """Return a round's name as rounds are compared: case- and space-insensitively."""
    return "".join(name.split()).casefold()
