"""Where an answer's facts come from: the reports behind each fact and the values they dispute.

Every fact in an answer (the company itself, each round, valuation, approval and export rule)
carries two fields, shown as they are:

- ``sources``: a list of ``SourceRef``, one per report of the fact that counts (every report
  but a deprecated one; a report that disagrees on a field is also named in that field's
  dispute, so the reports behind a chosen value are the sources less those that dispute it):
  ``{"event_id", "name", "url", "published_at", "recorded_at"}``, ``url`` and ``published_at``
  null when the report gave none; ordered by ``published_at`` (unpublished first), then
  ``event_id``.
- ``disputes``: an object keyed by the name of each field on which reports disagree (the
  payload's field names, and ``effective_date``), each a list of ``Alternative``:
  ``{"value", "sources"}``, the values not chosen, best supported first, each with the reports
  that gave it. Empty (``{}``) when every report agrees.

A round's investors each carry their own ``sources``: the reports that named them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from msgspec import Struct


class SourceRef(Struct, frozen=True, gc=False):
    """One report behind a fact: the event, its source, and when the ledger learned it."""

    event_id: uuid.UUID
    name: str
    url: str | None
    published_at: dt.datetime | None
    recorded_at: dt.datetime


class Alternative(Struct, frozen=True, kw_only=True, gc=False):
    """A value some reports gave for a field, other than the one the answer shows."""

    value: Any
    sources: list[SourceRef]


Disputes = dict[str, list[Alternative]]


class Provenance(Struct, frozen=True, kw_only=True, gc=False):
    """What merging a fact's reports found, kept with the merged fact.

    ``named_by`` gives, for each member of a merged list (a round's investor ids), the reports
    that named it; ``last_reported`` is the latest effective date among the reports counted.
    """

    sources: list[SourceRef]
    disputes: Disputes
    named_by: dict[str, list[SourceRef]]
    last_reported: dt.date
