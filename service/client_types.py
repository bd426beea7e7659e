"""What the Python client returns: the service's answers with money as Decimal, times as datetime.

The wire format is the service's own (service/schemas.py): amounts are decimal strings and
instants RFC 3339 strings. These Structs decode the same JSON into the types a Python user
computes with, so ``state.valuation.value * 2`` is exact and ``known_at`` compares as a time.
A test keeps their fields the same as the service's; fields the service adds later are ignored
until they are added here.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from msgspec import Struct

# Sources and disputes: where each fact shown comes from


class SourceRef(Struct, frozen=True):
    """One report behind a fact: the event, its source, and when the ledger learned it."""

    event_id: uuid.UUID
    name: str
    url: str | None
    published_at: dt.datetime | None
    recorded_at: dt.datetime


class Alternative(Struct, frozen=True, kw_only=True):
    """A value some reports gave for a field, other than the one the answer shows."""

    value: Any
    sources: list[SourceRef]


# Facts as answers show them


class Money(Struct, frozen=True):
    """An exact amount in an ISO 4217 currency."""

    value: Decimal
    currency: str


class DatedValuation(Struct, frozen=True, kw_only=True):
    """A valuation and the date it is effective from."""

    value: Decimal
    currency: str
    effective_date: dt.date
    event_id: uuid.UUID
    basis: str | None = None
    sources: list[SourceRef] = []
    disputes: dict[str, list[Alternative]] = {}


class RoundInvestor(Struct, frozen=True, kw_only=True):
    """An investor of a round."""

    investor_id: str
    name: str | None = None
    lead: bool = False
    sources: list[SourceRef] = []


class Round(Struct, frozen=True, kw_only=True):
    """A funding round."""

    round_name: str
    amount: Money | None
    amount_usd: Decimal | None
    investors: list[RoundInvestor]
    effective_date: dt.date
    event_id: uuid.UUID
    post_money_valuation: Money | None = None
    sources: list[SourceRef] = []
    disputes: dict[str, list[Alternative]] = {}


class Approval(Struct, frozen=True, kw_only=True):
    """A regulatory approval, its latest status."""

    jurisdiction: str
    authority: str
    scope: str
    status: str
    product: str | None
    effective_date: dt.date
    event_id: uuid.UUID
    sources: list[SourceRef] = []
    disputes: dict[str, list[Alternative]] = {}


class Restriction(Struct, frozen=True, kw_only=True):
    """An export rule in force that restricts the company."""

    rule_id: str
    title: str
    authority: str
    restricted_items: list[str]
    effective_date: dt.date
    reason: str
    sources: list[SourceRef] = []
    disputes: dict[str, list[Alternative]] = {}


class Rule(Struct, frozen=True, kw_only=True):
    """An export-control rule as in force."""

    rule_id: str
    issuing_jurisdiction: str
    title: str
    authority: str
    restricted_items: list[str]
    target_jurisdictions: list[str]
    target_entities: list[str]
    effective_date: dt.date
    action: str
    sources: list[SourceRef] = []
    disputes: dict[str, list[Alternative]] = {}


# Point-in-time answers: each says the date, instant and position it answers for


class Company(Struct, frozen=True, kw_only=True):
    """A company's state on ``as_of`` as the ledger knew it at ``known_at``."""

    company_id: str
    name: str | None
    jurisdiction: str | None
    legal_name: str | None
    founded_on: dt.date | None
    valuation: DatedValuation | None
    rounds: list[Round]
    total_raised_usd: Decimal
    investors: list[str]
    approvals: list[Approval]
    export_restrictions: list[Restriction]
    as_of: dt.date
    known_at: dt.datetime
    position: int
    sources: list[SourceRef] = []
    disputes: dict[str, list[Alternative]] = {}


class CompanySummary(Struct, frozen=True, kw_only=True):
    """A company in a list: who it is and its latest valuation."""

    company_id: str
    name: str | None
    jurisdiction: str | None
    valuation: DatedValuation | None


class CompanyPage(Struct, frozen=True, kw_only=True):
    """A page of companies; ``next_after`` continues it, or is None at the end."""

    companies: list[CompanySummary]
    next_after: str | None
    as_of: dt.date
    known_at: dt.datetime
    position: int


class Valuations(Struct, frozen=True, kw_only=True):
    """Every valuation of a company, in effective-date order."""

    company_id: str
    valuations: list[DatedValuation]
    as_of: dt.date | None
    known_at: dt.datetime
    position: int


class Holding(Struct, frozen=True):
    """The rounds of one company an investor took part in, and the reports that said so."""

    company_id: str
    rounds: list[str]
    sources: list[SourceRef] = []


class Portfolio(Struct, frozen=True, kw_only=True):
    """The companies an investor holds, through the rounds it took part in."""

    investor_id: str
    companies: list[Holding]
    as_of: dt.date
    known_at: dt.datetime
    position: int


class ExportRules(Struct, frozen=True, kw_only=True):
    """The export rules in force."""

    rules: list[Rule]
    as_of: dt.date
    known_at: dt.datetime
    position: int


class FieldDispute(Struct, frozen=True, kw_only=True):
    """One disputed field: the value the answer shows with its sources, and the others."""

    field: str
    value: Any
    sources: list[SourceRef]
    alternatives: list[Alternative]


class DisputedFact(Struct, frozen=True, kw_only=True):
    """A fact whose reports disagree: what it is, and each field in dispute."""

    kind: str  # "company", "round", "valuation", "approval" or "export_rule"
    label: str  # which one: the round's name, the valuation's date, the rule's id, ...
    event_id: uuid.UUID | None  # the report shown (a rule in force is shown by its rule_id)
    effective_date: dt.date
    fields: list[FieldDispute]


class CompanyDisputeList(Struct, frozen=True, kw_only=True):
    """A company's facts on which sources disagree, each disputed field with both sides."""

    company_id: str
    facts: list[DisputedFact]
    as_of: dt.date
    known_at: dt.datetime
    position: int


# Sources


class SourceCount(Struct, frozen=True, kw_only=True):
    """A source (by ``source.name``) and how many reports it gave."""

    name: str
    reports: int


class SourcePage(Struct, frozen=True, kw_only=True):
    """Sources in name order; ``next_after`` continues the list, or is None at its end."""

    sources: list[SourceCount]
    next_after: str | None


# The log


class Receipt(Struct, frozen=True, kw_only=True):
    """Proof that an event was appended: where it landed, when, and its hash."""

    event_id: uuid.UUID
    stream: str
    stream_version: int
    position: int
    recorded_at: dt.datetime
    hash: str


class Receipts(Struct, frozen=True):
    """The receipts of a batch, in the order its events were given."""

    receipts: list[Receipt]


class Source(Struct, frozen=True, kw_only=True):
    """Where an event's fact was reported."""

    name: str
    url: str | None = None
    published_at: dt.datetime | None = None


class Event(Struct, frozen=True, kw_only=True):
    """An event as the ledger shows it: the envelope and what the service assigned.

    ``data`` and ``metadata`` are plain JSON values (amounts in them stay decimal strings, as
    the event was recorded); answers give the folded facts typed.
    """

    event_id: uuid.UUID
    type: str
    stream: str
    stream_version: int
    position: int
    effective_date: dt.date
    recorded_at: dt.datetime
    source: Source
    data: dict[str, Any]
    schema_version: int = 1
    metadata: dict[str, Any] | None = None
    hash: str = ""
    fact: str | None = None  # the key of the fact reported; None for an amendment


class EventPage(Struct, frozen=True):
    """A page of events; ``next_after`` continues it, or is None at the end."""

    events: list[Event]
    next_after: int | None


class Digest(Struct, frozen=True):
    """The head of the hash chain: its position and hash (recorded_at None for an empty log)."""

    position: int
    hash: str
    recorded_at: dt.datetime | None
