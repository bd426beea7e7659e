"""What the read models learn from each event: pure, no I/O.

The read models are candidate indexes: a company appears once it has a stream, an investor
is linked to a company once any round or correction names it. Links are never removed (a
retracted round leaves a candidate whose fold simply shows no rounds), so applying an event
only ever adds rows, and replaying the log from scratch gives exactly the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

from events.history import HistoryRow


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


def changes(stream_events: Iterable[tuple[str, HistoryRow]]) -> Changes:
    """Return what a run of (stream, event) pairs adds to the read models."""
    found = Changes()
    for stream, event in stream_events:
        if stream.startswith("company:"):
            found.companies.setdefault(stream.removeprefix("company:"), event.position)
        if event.type == "round_announced":
            payload = _round.decode(event.data)
        elif event.type == "event_corrected" and stream.startswith("company:"):
            payload = _correction.decode(event.data).data
        else:
            continue
        company = stream.removeprefix("company:")
        for investor in payload.investors:
            found.links.setdefault((investor.investor_id, company), event.position)
    return found
