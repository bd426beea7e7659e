"""What the read models learn from each event: pure, no I/O.

The read models are candidate indexes: a company appears once it has a stream, an investor
is linked to a company once any round or correction names it. Links are never removed (a
retracted round leaves a candidate whose fold simply shows no rounds), so applying an event
only ever adds rows, and replaying the log from scratch gives exactly the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from events.streams import COMPANIES, EVENT_CORRECTED, ROUND_ANNOUNCED, category, stream_id


class _Investors(msgspec.Struct):
    investor_id: str


class _Round(msgspec.Struct):
    company_id: str | None = None
    investors: list[_Investors] = []


class _Correction(msgspec.Struct):
    data: _Round = msgspec.field(default_factory=_Round)


_round = msgspec.json.Decoder(_Round)
_correction = msgspec.json.Decoder(_Correction)


@dataclass
class Changes:
    """Rows to add, each with the first position that implied it."""

    companies: dict[str, int] = field(default_factory=dict)
    links: dict[tuple[str, str], int] = field(default_factory=dict)


def changes(events: Iterable[Iterable[Any]]) -> Changes:
    """Return what a run of events adds to the read models.

    Each event is ``(stream, type, position, payload)``, in position order; the payload (JSON
    text) is read only for rounds and corrections, and may be None for any other type.
    """
    found = Changes()
    companies, links = found.companies, found.links
    for stream, kind, position, data in events:
        in_company = category(stream) == COMPANIES
        company = stream_id(stream)
        if in_company and company not in companies:
            companies[company] = position
        if kind == ROUND_ANNOUNCED:
            payload = _round.decode(data)
        elif kind == EVENT_CORRECTED and in_company:
            payload = _correction.decode(data).data
        else:
            continue
        for investor in payload.investors:
            links.setdefault((investor.investor_id, company), position)
    return found
