"""The wire types: request and response Structs, shared by the controllers and the client."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from msgspec import Meta, Struct

from events.leaves import ShownEvent
from events.records import Receipt, RecordedEvent
from events.vocabulary import EVENT_TYPES, TEXT_PATTERN
from projections.company import CompanyState
from projections.company import DatedValuation as DatedValuation  # answers carry it too
from projections.disputes import DisputedFact
from projections.provenance import SourceRef
from projections.rules import RuleState

# Appending and reading events


class BatchReceipts(Struct, frozen=True):
    """Receipts of a batch, in the order its events were given."""

    receipts: list[Receipt]


class EventPage(Struct, frozen=True):
    """A page of events in position order; ``next_after`` continues it, or is null at the end."""

    events: list[RecordedEvent]
    next_after: int | None


class StreamPage(Struct, frozen=True):
    """A page of one stream's events; ``next_after_version`` continues it, or is null."""

    stream: str
    events: list[RecordedEvent]
    next_after_version: int | None


class Digest(Struct, frozen=True):
    """The head of the log: its position and hash, which commit to everything before it."""

    position: int
    hash: str
    recorded_at: str | None


# Point-in-time answers


class Company(CompanyState, frozen=True, kw_only=True):
    """A company's state with the times it answers for."""

    as_of: dt.date
    known_at: str
    position: int


class CompanySummary(Struct, frozen=True, kw_only=True):
    """A company in a list: who it is and its latest valuation."""

    company_id: str
    name: str | None
    jurisdiction: str | None
    valuation: DatedValuation | None


class CompanyPage(Struct, frozen=True, kw_only=True):
    """A page of companies; ``next_after`` continues it, or is null at the end."""

    companies: list[CompanySummary]
    next_after: str | None
    as_of: dt.date
    known_at: str
    position: int


class Valuations(Struct, frozen=True, kw_only=True):
    """Every valuation of a company, in effective-date order."""

    company_id: str
    valuations: list[DatedValuation]
    as_of: dt.date | None
    known_at: str
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
    known_at: str
    position: int


class ExportRules(Struct, frozen=True, kw_only=True):
    """The export rules in force."""

    rules: list[RuleState]
    as_of: dt.date
    known_at: str
    position: int


class CompanyDisputeList(Struct, frozen=True, kw_only=True):
    """A company's facts on which sources disagree, each disputed field with both sides."""

    company_id: str
    facts: list[DisputedFact]
    as_of: dt.date
    known_at: str
    position: int


class SourceCount(Struct, frozen=True, kw_only=True):
    """A source (by ``source.name``) and how many reports it gave."""

    name: str
    reports: int


class SourcePage(Struct, frozen=True, kw_only=True):
    """Sources in name order; ``next_after`` continues the list, or is null at its end."""

    sources: list[SourceCount]
    next_after: str | None


# Health


class ProjectionHealth(Struct, frozen=True, kw_only=True):
    """How far a projection has applied the log."""

    position: int
    lag: int
    error: str | None = None


class WebhookHealth(Struct, frozen=True, kw_only=True):
    """How far webhook delivery has got: queued up to the slowest cursor, then sent."""

    position: int
    lag: int
    pending_deliveries: int
    failing_endpoints: int
    disabled_endpoints: int


class Liveness(Struct, frozen=True, kw_only=True):
    """The process answers."""

    status: str


class Readiness(Struct, frozen=True, kw_only=True):
    """Whether the service can take appends now: the database reachable, the append task up."""

    status: str
    database: str
    append_task: str


class ReplicaHealth(Struct, frozen=True, kw_only=True):
    """A standby: whether it answers, what it has replayed, how far behind the primary."""

    state: str  # "serving", "lagging" (reads skip it) or "unreachable"
    head_position: int
    lag_events: int
    lag_seconds: float


class Health(Struct, frozen=True, kw_only=True):
    """Whether the service can serve, and where the log's head is."""

    status: str
    database: str
    head_position: int | None
    projections: dict[str, ProjectionHealth]
    webhooks: WebhookHealth | None
    append_task: str
    append_queue: int
    replicas: dict[str, ReplicaHealth] = {}
    signing: SigningHealth | None = None


# Webhooks

MAX_GRACE_SECONDS = 7 * 86400
DEFAULT_GRACE_SECONDS = 86400


class NewWebhook(Struct, frozen=True, forbid_unknown_fields=True):
    """An endpoint to register: where to POST, which event types (all when omitted)."""

    url: Annotated[str, Meta(max_length=2048, pattern=TEXT_PATTERN)]
    event_types: Annotated[list[str], Meta(min_length=1, max_length=len(EVENT_TYPES))] | None = None
    description: Annotated[str, Meta(max_length=500, pattern=TEXT_PATTERN)] = ""


class Rotation(Struct, frozen=True, forbid_unknown_fields=True):
    """How long the current secret keeps signing beside the new one (default a day)."""

    grace_period_seconds: Annotated[int, Meta(ge=0, le=MAX_GRACE_SECONDS)] = DEFAULT_GRACE_SECONDS


class Replay(Struct, frozen=True, forbid_unknown_fields=True):
    """Send again every matching event after this position."""

    after_position: Annotated[int, Meta(ge=0, le=2**63 - 1)]


class WebhookEndpoint(Struct, frozen=True, kw_only=True):
    """A registered endpoint, never with its secret.

    ``queued_through_position`` is the last position of the log whose events have been turned
    into deliveries for it; new subscriptions start at the head when they are created.
    """

    id: str
    url: str
    event_types: list[str] | None
    description: str
    status: str  # "enabled" or "disabled"
    disabled_at: str | None
    disabled_reason: str | None
    created_at: str
    queued_through_position: int
    last_success_at: str | None
    failing_since: str | None
    previous_secret_expires_at: str | None


class CreatedWebhook(WebhookEndpoint, frozen=True, kw_only=True):
    """A new endpoint, with the secret shown this once."""

    secret: str


class RotatedSecret(Struct, frozen=True, kw_only=True):
    """A new secret, shown once; the old one keeps signing until ``previous_secret_expires_at``."""

    id: str
    secret: str
    previous_secret_expires_at: str | None


class Attempt(Struct, frozen=True, kw_only=True):
    """One attempt to deliver: when, how long, what came back."""

    attempted_at: str
    duration_ms: float
    response_code: int | None
    succeeded: bool
    error: str | None


class Delivery(Struct, frozen=True, kw_only=True):
    """One event on its way to one endpoint, with every attempt made so far."""

    id: int
    event_id: uuid.UUID
    position: int
    replay: bool
    status: str  # "pending", "succeeded" or "failed"
    attempts: int
    next_attempt_at: str | None
    created_at: str
    completed_at: str | None
    attempt_log: list[Attempt]


class ReplayQueued(Struct, frozen=True, kw_only=True):
    """What a replay queued: every matching event after ``after_position`` up to ``through``.

    A replay queues at most ``MAX_REPLAY`` events; ``complete`` is false when it stopped there,
    and a replay after ``through_position`` continues it.
    """

    id: str
    after_position: int
    through_position: int
    queued: int
    complete: bool


class WebhookMessage(Struct, frozen=True):
    """The body POSTed to an endpoint: the event as ``GET /events`` shows it."""

    type: str
    timestamp: str
    data: RecordedEvent


class Webhooks(Struct, frozen=True):
    """Every registered endpoint."""

    webhooks: list[WebhookEndpoint]


class DeliveryPage(Struct, frozen=True):
    """Deliveries newest first; ``next_before`` continues the list, or is null at its end."""

    deliveries: list[Delivery]
    next_before: int | None


# Integrity and proofs


class InclusionProof(Struct, frozen=True, kw_only=True):
    """An RFC 9162 inclusion proof (base64 hashes), from the leaf's sibling up."""

    leaf_index: int
    tree_size: int
    leaf_hash: str
    hashes: list[str]


class ConsistencyProof(Struct, frozen=True, kw_only=True):
    """An RFC 9162 consistency proof (base64 hashes) between two tree sizes."""

    first: int
    second: int
    hashes: list[str]


class SigningHealth(Struct, frozen=True, kw_only=True):
    """The latest signed checkpoint, and whether the ledger still signs."""

    status: str  # "signing", "stopped" (the log no longer extends its checkpoint) or "none yet"
    tree_size: int | None
    signed_at: str | None
    fork: str | None = None


class Proof(Struct, frozen=True, kw_only=True):
    """What a verified answer carries: the checkpoint, the events folded, their inclusion proofs."""

    checkpoint: str
    events: list[ShownEvent]
    inclusion: list[InclusionProof]


class ProvenCompany(Company, frozen=True, kw_only=True):
    """A company's state, with the proof of what it was folded from."""

    proof: Proof


class ProvenValuations(Valuations, frozen=True, kw_only=True):
    """A company's valuations, with the proof of what they were folded from."""

    proof: Proof


class ProvenPortfolio(Portfolio, frozen=True, kw_only=True):
    """An investor's holdings, with the proof of what they were folded from."""

    proof: Proof


class ProvenExportRules(ExportRules, frozen=True, kw_only=True):
    """The export rules in force, with the proof of what they were folded from."""

    proof: Proof
