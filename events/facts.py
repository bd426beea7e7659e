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
from typing import Any

import msgspec

from events.streams import (
    COMPANY_REGISTERED,
    EXPORT_RULE,
    REGULATORY_APPROVAL,
    ROUND_ANNOUNCED,
    VALUATION_REPORTED,
)
from events.vocabulary import (
    CompanyRegistered,
    Envelope,
    ExportRule,
    RegulatoryApproval,
    RoundAnnounced,
    ValuationReported,
)


def fact_key(data: object, effective_date: dt.date, explicit: str | None = None) -> str | None:
    """Return the key of the fact a report is about, or None for an amendment."""
    if explicit:
        return explicit
    for kind, event_type in _KINDS:
        if isinstance(data, kind):
            return key_of(event_type, data, effective_date)
    return None


def envelope_fact(envelope: Envelope) -> str | None:
    """Return the key stored with an envelope when it is appended (None for an amendment).

    Every path that appends (the writer, a bulk import) stores this, so that a key is computed
    the same way wherever an event enters the log.
    """
    return fact_key(envelope.data, envelope.effective_date, envelope.fact)  # type: ignore[attr-defined]


class _KeyFields(msgspec.Struct):
    """The payload fields a derived key reads, decoded from a stored payload without checks."""

    company_id: str = ""
    round_name: str = ""
    jurisdiction: str = ""
    scope: str = ""
    product: str | None = None
    status: str = ""
    action: str = ""


_key_fields = msgspec.json.Decoder(_KeyFields)


def stored_fact_key(event_type: str, data: str, effective_date: dt.date) -> str | None:
    """Return the derived key of a stored event (its payload as stored), None for an amendment.

    The payload is read for the few fields a key uses, without the vocabulary's checks: an
    event stored long ago keeps the key it was appended under, whatever the checks are now.
    """
    if event_type not in _KEYED:
        return None
    return key_of(event_type, _key_fields.decode(data), effective_date)


def key_of(event_type: str, data: Any, effective_date: dt.date) -> str | None:
    """Return the derived key of a report of ``event_type`` (None for an amendment)."""
    if event_type == VALUATION_REPORTED:
        return f"valuation:{effective_date.isoformat()}"
    if event_type == ROUND_ANNOUNCED:
        return f"round:{round_name_key(data.round_name)}"
    if event_type == REGULATORY_APPROVAL:
        parts = [data.jurisdiction, data.scope, data.product, data.status]
        return "approval:" + json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    if event_type == EXPORT_RULE:
        return f"rule:{data.action}:{effective_date.isoformat()}"
    if event_type == COMPANY_REGISTERED:
        return f"company:{data.company_id}"
    return None


_KINDS = (
    (ValuationReported, VALUATION_REPORTED),
    (RoundAnnounced, ROUND_ANNOUNCED),
    (RegulatoryApproval, REGULATORY_APPROVAL),
    (ExportRule, EXPORT_RULE),
    (CompanyRegistered, COMPANY_REGISTERED),
)
_KEYED = frozenset(event_type for _, event_type in _KINDS)


def round_name_key(name: str) -> str:
    """Return a round's name as rounds are compared: case- and space-insensitively."""
    return "".join(name.split()).casefold()
