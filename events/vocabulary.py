"""The event vocabulary: the eight event types as frozen, keyword-only, tagged msgspec Structs.

The tag of each envelope is its wire name (``round_announced``) and is fixed forever: stored rows
carry it in their ``type`` column, so renaming a class never orphans them. New fields get
defaults; a breaking change is a new schema version with an upcaster.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeAlias

from msgspec import Meta, Struct

from events.codes import check_country, check_currency, country_codes, money_codes
from events.streams import (
    COMPANY_REGISTERED,
    EVENT_CORRECTED,
    EVENT_RETRACTED,
    EXPORT_RULE,
    REGULATORY_APPROVAL,
    REPORT_RANKED,
    ROUND_ANNOUNCED,
    VALUATION_REPORTED,
    company_stream,
    rule_stream,
)

# msgspec checks patterns with Python's re.search, where "$" also matches before a final
# newline ("acme\n" would pass for a slug and name another stream than "acme"). Each pattern
# therefore ends in "(?!\n)$", which means the same in the JSON Schema (ECMA) dialect.
STREAM_PATTERN = r"^(?:company|export-rule):[a-z0-9][a-z0-9-]{0,63}(?!\n)$"
SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}(?!\n)$"
# A positive exact decimal written as a string: no sign, no exponent, no leading zeros.
DECIMAL_PATTERN = r"^(?!0+(?:\.0+)?$)(?:0|[1-9][0-9]{0,29})(?:\.[0-9]{1,18})?(?!\n)$"
CURRENCY_PATTERN = r"^[A-Z]{3}(?!\n)$"
COUNTRY_PATTERN = r"^[A-Z]{2}(?!\n)$"
URL_PATTERN = r"^https?://[^\s\x00]+(?!\n)$"
# PostgreSQL cannot hold U+0000 in text or jsonb: refused here rather than failing a write.
TEXT_PATTERN = r"^[^\x00]*$"

Slug = Annotated[
    str, Meta(pattern=SLUG_PATTERN, description="lower-case slug", examples=["zhipu-ai"])
]
DecimalString = Annotated[
    str,
    Meta(
        pattern=DECIMAL_PATTERN,
        description="a positive exact decimal written as a string",
        examples=["2500000000", "341.5"],
    ),
]
# The schema lists the codes themselves, so that it describes exactly what is accepted.
CurrencyCode = Annotated[
    str,
    Meta(
        pattern=CURRENCY_PATTERN,
        description="ISO 4217, except XXX (no currency) and XTS (testing)",
        examples=["CNY"],
        extra_json_schema={"enum": sorted(money_codes())},
    ),
]
CountryCode = Annotated[
    str,
    Meta(
        pattern=COUNTRY_PATTERN,
        description="ISO 3166-1 alpha-2",
        examples=["CN"],
        extra_json_schema={"enum": sorted(country_codes())},
    ),
]
Instant = Annotated[dt.datetime, Meta(tz=True, description="RFC 3339 instant with an offset")]
Text = Annotated[str, Meta(min_length=1, max_length=500, pattern=TEXT_PATTERN)]
Url = Annotated[str, Meta(pattern=URL_PATTERN, max_length=2048)]
Metadata = Annotated[dict[str, Any], Meta(max_length=32, description="small free-form object")]


# Subclasses restate ``frozen=True``: msgspec inherits it, but a type checker reading the
# dataclass transform does not, and would take them for mutable children of a frozen base.
class Fact(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Base of every value object in the vocabulary: immutable and strict."""


class Money(Fact, frozen=True):
    """An exact amount in an ISO 4217 currency."""

    value: DecimalString
    currency: CurrencyCode

    def __post_init__(self) -> None:
        check_currency(self.currency, "currency")


class Source(Fact, frozen=True):
    """Where a fact was reported."""

    name: Text
    url: Url | None = None
    published_at: Instant | None = None


class InvestorRef(Fact, frozen=True):
    """An investor taking part in a round."""

    investor_id: Slug
    name: Text | None = None
    lead: bool = False


class CompanyRegistered(Fact, frozen=True):
    """A company became known to the ledger."""

    company_id: Slug
    name: Text
    jurisdiction: CountryCode
    legal_name: Text | None = None
    founded_on: dt.date | None = None

    def __post_init__(self) -> None:
        check_country(self.jurisdiction, "jurisdiction")


class RoundAnnounced(Fact, frozen=True):
    """A funding round was announced."""

    company_id: Slug
    round_name: Text
    amount: Money | None
    investors: Annotated[list[InvestorRef], Meta(max_length=500)]
    amount_usd: DecimalString | None = None
    post_money_valuation: Money | None = None

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for i, investor in enumerate(self.investors):
            if investor.investor_id in seen:
                raise ValueError(
                    f"investors[{i}].investor_id: {investor.investor_id!r} is listed twice"
                )
            seen.add(investor.investor_id)
        if (
            self.amount is not None
            and self.amount.currency == "USD"
            and self.amount_usd is not None
            and Decimal(self.amount_usd) != Decimal(self.amount.value)
        ):
            raise ValueError("amount_usd: differs from amount.value of a round reported in USD")


class ValuationReported(Fact, frozen=True):
    """A valuation of a company was reported."""

    company_id: Slug
    valuation: Money
    basis: Literal["post-money", "pre-money", "reported"] | None = None


class RegulatoryApproval(Fact, frozen=True):
    """An authority granted or revoked an approval."""

    company_id: Slug
    jurisdiction: CountryCode
    authority: Text
    scope: Text
    status: Literal["granted", "revoked"]
    product: Text | None = None

    def __post_init__(self) -> None:
        check_country(self.jurisdiction, "jurisdiction")


class ExportRule(Fact, frozen=True):
    """An export-control rule was imposed, amended or rescinded."""

    rule_id: Slug
    issuing_jurisdiction: CountryCode
    authority: Text
    title: Text
    action: Literal["imposed", "amended", "rescinded"]
    restricted_items: Annotated[list[Text], Meta(max_length=200)]
    target_jurisdictions: Annotated[list[CountryCode], Meta(max_length=250)]
    target_entities: Annotated[list[Slug], Meta(max_length=1000)]

    def __post_init__(self) -> None:
        check_country(self.issuing_jurisdiction, "issuing_jurisdiction")
        for i, code in enumerate(self.target_jurisdictions):
            check_country(code, f"target_jurisdictions[{i}]")


class EventCorrected(Fact, frozen=True):
    """An earlier event's payload (and optionally its valid time) is replaced."""

    target_event_id: uuid.UUID
    data: dict[str, Any]
    effective_date: dt.date | None = None


class EventRetracted(Fact, frozen=True):
    """An earlier event is withdrawn."""

    target_event_id: uuid.UUID
    reason: Text


class ReportRanked(Fact, frozen=True):
    """An analyst ranks a report: preferred, normal, or deprecated (never counted)."""

    target_event_id: uuid.UUID
    rank: Literal["preferred", "normal", "deprecated"]
    reason: Text


class Envelope(
    Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    omit_defaults=True,
    tag_field="type",
):
    """What a client posts: one fact with its valid time and provenance."""

    effective_date: dt.date
    source: Source
    event_id: uuid.UUID | None = None
    expected_version: Annotated[int, Meta(ge=0)] | None = None
    metadata: Metadata | None = None
    fact: Slug | None = None  # names the fact reported, when the derived key would not match

    @property
    def type(self) -> str:
        """Return the wire name of this event's type."""
        return type(self).__struct_config__.tag  # type: ignore[return-value]


class CompanyRegisteredEvent(Envelope, tag=COMPANY_REGISTERED, frozen=True):
    data: CompanyRegistered


class RoundAnnouncedEvent(Envelope, tag=ROUND_ANNOUNCED, frozen=True):
    data: RoundAnnounced


class ValuationReportedEvent(Envelope, tag=VALUATION_REPORTED, frozen=True):
    data: ValuationReported


class RegulatoryApprovalEvent(Envelope, tag=REGULATORY_APPROVAL, frozen=True):
    data: RegulatoryApproval


class ExportRuleEvent(Envelope, tag=EXPORT_RULE, frozen=True):
    data: ExportRule


class EventCorrectedEvent(Envelope, tag=EVENT_CORRECTED, frozen=True):
    data: EventCorrected


class EventRetractedEvent(Envelope, tag=EVENT_RETRACTED, frozen=True):
    data: EventRetracted


class ReportRankedEvent(Envelope, tag=REPORT_RANKED, frozen=True):
    data: ReportRanked


AnyEnvelope: TypeAlias = (
    CompanyRegisteredEvent
    | RoundAnnouncedEvent
    | ValuationReportedEvent
    | RegulatoryApprovalEvent
    | ExportRuleEvent
    | EventCorrectedEvent
    | EventRetractedEvent
    | ReportRankedEvent
)

PAYLOAD_TYPES: dict[str, type[Fact]] = {
    COMPANY_REGISTERED: CompanyRegistered,
    ROUND_ANNOUNCED: RoundAnnounced,
    VALUATION_REPORTED: ValuationReported,
    REGULATORY_APPROVAL: RegulatoryApproval,
    EXPORT_RULE: ExportRule,
    EVENT_CORRECTED: EventCorrected,
    EVENT_RETRACTED: EventRetracted,
    REPORT_RANKED: ReportRanked,
}
RANKS = ("preferred", "normal", "deprecated")

EVENT_TYPES = tuple(PAYLOAD_TYPES)


class AppendBatch(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Several envelopes appended atomically, all or none."""

    events: Annotated[list[AnyEnvelope], Meta(min_length=1, max_length=1000)]


def stream_of(envelope: Envelope) -> str | None:
    """Return the stream a fact belongs to, or None for amendments (they join their target's)."""
    return stream_of_payload(envelope.data)  # type: ignore[attr-defined]


def stream_of_payload(data: object) -> str | None:
    """Return the stream of a payload, or None for amendments."""
    if isinstance(data, ExportRule):
        return rule_stream(data.rule_id)
    if isinstance(
        data, CompanyRegistered | RoundAnnounced | ValuationReported | RegulatoryApproval
    ):
        return company_stream(data.company_id)
    return None
