"""A company's facts merged for any day asked, each merge made once and kept with its timeline.

Every ``as_of`` is answered from a prefix of one timeline (the facts in valid-time order, as
known at one instant). The reports of a fact effective by a day are therefore the first k of
its reports in that timeline, and its merged fact depends on nothing but (fact, k): it is made
once, when first asked, together with what an answer shows of it (``company.shown``), and kept
as long as the timeline is. A held stream keeps one ``Merged`` for its facts as known now and
drops it when it grows (projections/stream_cache.py), so a memo never outlives the facts it was
made from. At most one entry is kept per report in the timeline.

The result equals ``merged_facts`` of the same prefix (the property tests compare them on every
day): the same reports go into each merge, and ``merge`` does not depend on their order.
"""

from __future__ import annotations

import bisect
import datetime as dt

from projections.company import Shown, shown
from projections.facts import fact_group, merge
from projections.timeline import EffectiveFact, Timeline

_SINGLE = -1  # the group of a report whose fact has no other report and which is not ranked


class Merged:
    """The merged facts of one timeline, for any day, each with what an answer shows of it."""

    __slots__ = ("_dates", "_facts", "_kept", "_reports", "_singles", "_slots")

    def __init__(self, timeline: Timeline) -> None:
        self._facts = timeline.facts
        self._dates = timeline.dates
        # Per fact, in valid-time order: its group's number and its place (1, 2, ...) among
        # the group's reports; a fact reported once is its own merged fact.
        self._slots: list[tuple[int, int]] = []
        self._reports: list[list[EffectiveFact]] = []  # per group, in valid-time order
        groups: dict[tuple[str, str, str], int] = {}
        for fact in self._facts:
            if not fact.shared:
                self._slots.append((_SINGLE, 0))
                continue
            group = groups.setdefault(fact_group(fact), len(groups))
            if group == len(self._reports):
                self._reports.append([])
            self._reports[group].append(fact)
            self._slots.append((group, len(self._reports[group])))
        self._singles: list[Shown | None] = [None] * len(self._facts)  # by index, once made
        self._kept: dict[int, Shown | None] = {}  # by group * (facts + 1) + place, once made

    def until(self, as_of: dt.date) -> list[Shown]:
        """The merged facts effective by ``as_of`` in valid-time order, each with its view."""
        count = bisect.bisect_right(self._dates, as_of)
        found: list[Shown] = []
        reported: dict[int, int] = {}  # group -> its reports effective by as_of
        slots, singles, kept = self._slots, self._singles, self._kept
        for index in range(count):
            group, place = slots[index]
            if group == _SINGLE:
                one = singles[index]
                if one is None:
                    one = singles[index] = shown(self._facts[index])
                found.append(one)
            else:
                reported[group] = place
        if not reported:
            return found  # the timeline's own order
        size = len(slots) + 1
        for group, place in reported.items():
            key = group * size + place
            if key in kept:
                merged = kept[key]
            else:
                fact = merge(self._reports[group][:place])
                merged = kept[key] = shown(fact) if fact is not None else None
            if merged is not None:
                found.append(merged)
        found.sort()  # by place in valid time (``shown``): unique, so nothing else is compared
        return found
