"""The log bench_queries.py loads: companies, their events and export rules, made in Python.

Also the figure every case of bench_queries.py reports.
"""

from __future__ import annotations

import collections
import datetime as dt
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

COMPANY_PREFIX = "co-"
INVESTOR_POOL = 200
RULES = 20
FIRST_DAY = dt.date(2019, 1, 1)
LAST_DAY = dt.date(2025, 12, 31)


@dataclass
class Figure:
    """One case's figures."""

    case: str
    what: str
    rate: float
    unit: str
    p50_ms: float | None = None
    p99_ms: float | None = None
    latency_source: str = ""
    count: int = 0
    seconds: float = 0.0
    failures: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    note: str = ""


# --------------------------------------------------------------------------- the log


def company_id(n: int) -> str:
    return f"{COMPANY_PREFIX}{n}"


@dataclass(slots=True)
class _Slot:
    """What the plan must learn of an event once it has its id (valuations, for corrections)."""

    company: int  # index, or -1 for an event that nothing will refer to
    round: int


class LogPlan:
    """The events of the run, made lazily in recording order.

    Each company has about N/C events: first its company_registered (effective in 2018, so
    that every as_of from 2019 on finds it), then valuations, rounds and a few approvals with
    effective dates spread over 2019-2025, and now and then a correction of one of its earlier
    valuations. The log interleaves the companies as a live ledger would: round r holds the
    r-th event of every company that has one, in a shuffled order, so the events of one
    stream lie far apart in the table. The export-rule streams' changes are spread over the
    rounds.
    """

    def __init__(self, events: int, companies: int, seed: int = 20231017, reports: int = 1) -> None:
        from events import vocabulary as v

        self.v = v
        self.rng = rng = random.Random(seed)
        self.companies = companies
        self.days = [
            FIRST_DAY + dt.timedelta(days=d) for d in range((LAST_DAY - FIRST_DAY).days + 1)
        ]
        self.investors = [f"investor-{i:03d}" for i in range(1, INVESTOR_POOL + 1)]
        self.sources = [
            v.Source(name="South China Morning Post", url="https://www.scmp.com/tech"),
            v.Source(name="Caixin Global", url="https://www.caixinglobal.com/"),
            v.Source(name="36Kr"),
        ]
        self.rule_events = self._rules()
        company_events = events - sum(len(r) for r in self.rule_events)
        if company_events < companies:
            raise SystemExit(f"--events must be at least --companies + {events - company_events}")
        average = company_events / companies
        counts = [max(1, round(average * rng.uniform(0.75, 1.25))) for _ in range(companies)]
        surplus = sum(counts) - company_events
        while surplus:  # bring the total to exactly N
            i = rng.randrange(companies)
            if surplus > 0 and counts[i] > 1:
                counts[i] -= 1
                surplus -= 1
            elif surplus < 0:
                counts[i] += 1
                surplus += 1
        self.counts = counts
        self.rounds = max(counts)
        self.total = events
        # round -> export-rule envelopes recorded in it (each rule's changes in order)
        self.rules_at: dict[int, list[Any]] = collections.defaultdict(list)
        for changes in self.rule_events:
            for j, envelope in enumerate(changes):
                at = int(self.rounds * (j + rng.random()) / len(changes))
                self.rules_at[min(at, self.rounds - 1)].append(envelope)
        self.valuations: list[list[tuple[uuid.UUID, int]]] = [[] for _ in range(companies)]
        self.kinds: collections.Counter[str] = collections.Counter()
        # With --reports N each fact is reported N times, by different sources, in the next
        # slots of its company: the second report agrees with the first, the third (and any
        # after it) gives another value of one field. The log keeps its size in events.
        self.reports = reports
        self.pending: list[list[tuple[Any, _Slot]]] = [[] for _ in range(companies)]

    def _rules(self) -> list[list[Any]]:
        v, rng = self.v, self.rng
        rules = []
        items = ["A100", "H100", "H800", "A800", "EUV lithography", "HBM", "advanced DRAM"]
        for k in range(1, RULES + 1):
            changes = []
            n = rng.randint(3, 7)
            days = sorted(rng.sample(self.days, n))
            for j in range(n):
                action = "imposed" if j == 0 else "amended"
                if j == n - 1 and rng.random() < 0.3:
                    action = "rescinded"
                entities = [company_id(rng.randint(1, self.companies)) for _ in range(3)]
                changes.append(
                    v.ExportRuleEvent(
                        effective_date=days[j],
                        source=v.Source(
                            name="Federal Register", url="https://www.federalregister.gov/"
                        ),
                        data=v.ExportRule(
                            rule_id=f"rule-{k:02d}",
                            issuing_jurisdiction=rng.choice(["US", "US", "NL", "JP"]),
                            authority="Bureau of Industry and Security",
                            title=f"Advanced computing and semiconductor controls {k}",
                            action=action,
                            restricted_items=rng.sample(items, rng.randint(1, 4)),
                            target_jurisdictions=rng.choice([["CN"], ["CN", "HK"], ["CN", "MO"]]),
                            target_entities=sorted(set(entities[: rng.randint(0, 3)])),
                        ),
                    )
                )
            rules.append(changes)
        return rules

    def events(self) -> Iterator[tuple[Any, _Slot]]:
        """Yield every envelope in recording order with what to learn of it."""
        rng = self.rng
        for r in range(self.rounds):
            order: list[Any] = [i for i in range(self.companies) if self.counts[i] > r]
            order.extend(self.rules_at.get(r, ()))
            rng.shuffle(order)
            for item in order:
                if isinstance(item, int):
                    yield self._company_event(item, r)
                else:
                    self.kinds[item.type] += 1
                    yield item, _Slot(-1, r)

    def learn(self, prepared: list[Any], slots: list[_Slot]) -> None:
        """Remember the ids of valuations (a few per company) for later corrections."""
        for event, slot in zip(prepared, slots, strict=True):
            if slot.company >= 0:
                known = self.valuations[slot.company]
                if len(known) < 4:
                    known.append((event.event_id, slot.round))
                else:
                    known[self.rng.randrange(4)] = (event.event_id, slot.round)

    def _company_event(self, i: int, r: int) -> tuple[Any, _Slot]:
        if self.pending[i]:
            envelope, slot = self.pending[i].pop(0)
            self.kinds[envelope.type] += 1
            return envelope, slot
        envelope, slot = self._first_report(i, r)
        if self.reports > 1 and envelope.type != "event_corrected":
            self.pending[i] = [
                (self._again(envelope, n), _Slot(-1, r)) for n in range(1, self.reports)
            ]
        return envelope, slot

    def _again(self, envelope: Any, n: int) -> Any:
        """The ``n``-th other report of the fact ``envelope`` reports, by another source."""
        import msgspec

        v, data = self.v, envelope.data
        source = self.sources[(self.sources.index(envelope.source) + n) % len(self.sources)]
        if n >= 2:  # a dissenting report: another value of one field
            if isinstance(data, v.ValuationReported):
                other = v.Money(value=self._amount(), currency=data.valuation.currency)
                data = msgspec.structs.replace(data, valuation=other)
            elif isinstance(data, v.RoundAnnounced):
                usd = str(int(data.amount_usd or "1000000") + 1_000_000)
                data = msgspec.structs.replace(data, amount_usd=usd)
            elif isinstance(data, v.RegulatoryApproval):
                data = msgspec.structs.replace(data, authority="State Council")
            elif isinstance(data, v.CompanyRegistered):
                data = msgspec.structs.replace(data, legal_name=f"{data.name} Holdings")
        return msgspec.structs.replace(envelope, source=source, data=data)

    def _first_report(self, i: int, r: int) -> tuple[Any, _Slot]:
        v, rng = self.v, self.rng
        cid = company_id(i + 1)
        source = rng.choice(self.sources)
        if r == 0:
            self.kinds["company_registered"] += 1
            return v.CompanyRegisteredEvent(
                effective_date=dt.date(2018, 1, 1) + dt.timedelta(days=rng.randrange(365)),
                source=source,
                data=v.CompanyRegistered(
                    company_id=cid,
                    name=f"Company {i + 1}",
                    jurisdiction=rng.choice(["CN", "CN", "CN", "CN", "HK", "US", "SG"]),
                    legal_name=f"Company {i + 1} Technology Co., Ltd.",
                ),
            ), _Slot(-1, r)
        u = rng.random()
        if u < 0.03:
            targets = [t for t, at in self.valuations[i] if at <= r - 2]
            if targets:
                self.kinds["event_corrected"] += 1
                return v.EventCorrectedEvent(
                    effective_date=rng.choice(self.days),
                    source=source,
                    data=v.EventCorrected(
                        target_event_id=rng.choice(targets),
                        data={
                            "company_id": cid,
                            "valuation": {"value": self._amount(), "currency": "USD"},
                            "basis": "reported",
                        },
                        effective_date=rng.choice(self.days) if rng.random() < 0.5 else None,
                    ),
                ), _Slot(-1, r)
        if u < 0.62:
            self.kinds["valuation_reported"] += 1
            return v.ValuationReportedEvent(
                effective_date=rng.choice(self.days),
                source=source,
                data=v.ValuationReported(
                    company_id=cid,
                    valuation=v.Money(
                        value=self._amount(), currency="USD" if rng.random() < 0.8 else "CNY"
                    ),
                    basis=rng.choice(["post-money", "pre-money", "reported", None]),
                ),
            ), _Slot(i, r)
        if u < 0.95:
            self.kinds["round_announced"] += 1
            amount = rng.randint(10, 5000) * 1_000_000
            investors = [
                v.InvestorRef(
                    investor_id=slug,
                    name=f"Investor {slug[-3:]}" if rng.random() < 0.5 else None,
                    lead=n == 0 and rng.random() < 0.5,
                )
                for n, slug in enumerate(rng.sample(self.investors, rng.randint(1, 3)))
            ]
            post_money = (
                v.Money(value=self._amount(), currency="USD") if rng.random() < 0.3 else None
            )
            return v.RoundAnnouncedEvent(
                effective_date=rng.choice(self.days),
                source=source,
                data=v.RoundAnnounced(
                    company_id=cid,
                    round_name=f"Series {rng.choice('ABCDEFG')}{rng.randint(1, 3)}",
                    amount=v.Money(value=str(amount), currency="CNY"),
                    amount_usd=str(amount * 100 // 712),
                    investors=investors,
                    post_money_valuation=post_money,
                ),
            ), _Slot(-1, r)
        self.kinds["regulatory_approval"] += 1
        return v.RegulatoryApprovalEvent(
            effective_date=rng.choice(self.days),
            source=source,
            data=v.RegulatoryApproval(
                company_id=cid,
                jurisdiction="CN",
                authority="Cyberspace Administration of China",
                scope=rng.choice(
                    ["generative AI services", "algorithm filing", "cross-border data transfer"]
                ),
                status="granted" if rng.random() < 0.85 else "revoked",
            ),
        ), _Slot(-1, r)

    def _amount(self) -> str:
        return str(self.rng.randint(20, 80_000) * 1_000_000)
