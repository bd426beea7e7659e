"""Building logs of reports in memory: each event one source's report, recorded an hour apart."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec

from events.vocabulary import PAYLOAD_TYPES
from projections.company import CompanyState, company_state
from projections.provenance import SourceRef
from projections.rules import RuleState, rules_in_force
from projections.timeline import LoggedEvent, effective_facts

T0 = dt.datetime(2023, 10, 1, tzinfo=dt.UTC)
LATER = T0 + dt.timedelta(days=365)
COMPANY = "zhipu-ai"


def published(day: int) -> dt.datetime:
    """An instant in October 2023."""
    return dt.datetime(2023, 10, day, 8, tzinfo=dt.UTC)


class Reports:
    """A log of reports: ``report`` appends one, ``state`` and ``rules`` fold them."""

    def __init__(self) -> None:
        self.events: list[LoggedEvent] = []

    def report(
        self,
        type_: str,
        effective: str,
        data: dict[str, Any],
        source: str,
        published_at: dt.datetime | None = None,
        fact: str = "",
    ) -> LoggedEvent:
        position = len(self.events) + 1
        event = LoggedEvent(
            uuid.uuid4(),
            type_,
            position,
            T0 + dt.timedelta(hours=position),
            dt.date.fromisoformat(effective),
            msgspec.convert(data, PAYLOAD_TYPES[type_]),
            source,
            f"https://{source.lower().replace(' ', '-')}.example/{position}",
            published_at,
            fact,
        )
        self.events.append(event)
        return event

    def rank(self, target: LoggedEvent, rank: str) -> LoggedEvent:
        data = {"target_event_id": str(target.event_id), "rank": rank, "reason": "analyst"}
        return self.report("report_ranked", "2023-10-30", data, "analyst")

    def retract(self, target: LoggedEvent) -> LoggedEvent:
        data = {"target_event_id": str(target.event_id), "reason": "misrecorded"}
        return self.report("event_retracted", "2023-10-30", data, "analyst")

    def state(self, as_of: str = "2024-12-31", known_at: dt.datetime = LATER) -> CompanyState:
        facts = effective_facts(self.events, known_at)
        day = dt.date.fromisoformat(as_of)
        mine = [f for f in facts if getattr(f.data, "company_id", None) == COMPANY]
        state = company_state(COMPANY, mine, rules_in_force(facts, day), day)
        assert state is not None
        return state

    def rules(self, as_of: str = "2024-12-31", known_at: dt.datetime = LATER) -> list[RuleState]:
        return rules_in_force(effective_facts(self.events, known_at), dt.date.fromisoformat(as_of))


def ref(event: LoggedEvent) -> SourceRef:
    """The source entry an answer shows for a report."""
    return SourceRef(
        event.event_id, event.source_name, event.source_url, event.published_at, event.recorded_at
    )
