"""Streams kept decoded and folded in memory, so that an answer reads only what is new.

Each answer still asks PostgreSQL for what its streams gained since the version held, so it is
never staler than one read from scratch (docs/design.md, "Streams held in memory"). Held events
form no cycles, so they are frozen out of the cycle collector's sight as the cache grows.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from events.log import Connection, read_streams
from projections.merged import Merged
from projections.timeline import (
    LoggedEvent,
    Timeline,
    decode_payload,
    effective_facts,
    timeline,
)

_END_OF_TIME = dt.datetime.max.replace(tzinfo=dt.UTC)
FREEZE_AFTER = 2_000  # the least growth in events held between two freezes
FREEZE_GROWTH = 1.05  # and the least growth in proportion

# What a held event costs, estimated from its payload as stored. Measured with tracemalloc:
# a decoded payload takes from 1 (one long text) to about 4.6 (thousands of small investors)
# times the bytes of its JSON; the envelope, its fact and its place in the timelines add a
# few hundred bytes whatever the payload.
BYTES_PER_EVENT = 512
BYTES_PER_PAYLOAD_BYTE = 5


def held_bytes(payload: str) -> int:
    """Return the memory a held event with this payload (its stored JSON) is counted for."""
    return BYTES_PER_EVENT + BYTES_PER_PAYLOAD_BYTE * len(payload)


class Stream:
    """One stream's events in position order, and its facts as known now."""

    __slots__ = ("_merged", "events", "last_recorded", "now", "position", "size", "version")

    def __init__(self) -> None:
        self.events: list[LoggedEvent] = []
        self.version = 0  # stream_version of the last event held
        self.position = 0  # its position
        self.last_recorded: dt.datetime | None = None
        self.now: Timeline = timeline([])
        self.size = 0  # the bytes its events are counted for (held_bytes)
        self._merged: Merged | None = None  # self.now's merged facts, made when first asked

    def extend(self, rows: Sequence[Any]) -> tuple[int, int]:
        """Add the rows (in stream order) after the last event held; return how many, in bytes."""
        rows = [r for r in rows if r["stream_version"] > self.version]
        new = [
            LoggedEvent(
                r["event_id"],
                r["type"],
                r["position"],
                r["recorded_at"],
                r["effective_date"],
                decode_payload(r["type"], r["data"]),
                r["source_name"],
                r["source_url"],
                r["published_at"],
                r["fact"] or "",
            )
            for r in rows
        ]
        size = sum(held_bytes(r["data"]) for r in rows)
        if new:
            # Folded before anything is changed: if the fold fails, the stream stays as it was
            # and the next read tries again, rather than answering without the new events.
            events = self.events + new
            self.now = timeline(effective_facts(events, _END_OF_TIME))
            self._merged = None
            self.events = events
            self.version += len(new)
            self.position = new[-1].position
            self.last_recorded = new[-1].recorded_at
            self.size += size
        return len(new), size

    def facts(self, known_at: dt.datetime, position: int) -> Timeline:
        """The facts as known at ``known_at`` in the log up to ``position``, in valid time."""
        if self._knows_all(known_at, position):
            return self.now
        visible = [e for e in self.events if e.position <= position and e.recorded_at <= known_at]
        return timeline(effective_facts(visible, known_at))

    def merged(self, known_at: dt.datetime, position: int) -> Merged:
        """The merged facts as known at ``known_at`` in the log up to ``position``, for any day.

        Those as known now are kept until the stream grows: every day asked about reuses them.
        """
        if not self._knows_all(known_at, position):
            return Merged(self.facts(known_at, position))
        if self._merged is None:
            self._merged = Merged(self.now)
        return self._merged

    def _knows_all(self, known_at: dt.datetime, position: int) -> bool:
        """Whether every event held was in the log up to ``position`` and known at ``known_at``."""
        return self.position <= position and (
            self.last_recorded is None or self.last_recorded <= known_at
        )


@dataclass
class Snapshot:
    """Streams as of one read, with the log's positions then.

    ``position`` is the last position recorded by ``known_at``; ``known_at`` is the instant
    the answer speaks for (the request's, or the head's recording time if earlier, so "now"
    is the head: the database's clock, never this process's). ``today`` is the database's
    date in UTC at the read.
    """

    streams: dict[str, Stream] = field(default_factory=dict)
    position: int = 0
    rules_position: int = 0
    known_at: dt.datetime = _END_OF_TIME
    today: dt.date = dt.date.min

    def facts(self, stream: str) -> Timeline:
        """The stream's facts as this snapshot knows them."""
        return self.streams[stream].facts(self.known_at, self.position)

    def merged(self, stream: str) -> Merged:
        """The stream's merged facts as this snapshot knows them, for any day."""
        return self.streams[stream].merged(self.known_at, self.position)


class StreamCache:
    """The streams read lately, decoded: at most ``max_events`` events and ``max_bytes`` in all.

    Bytes are estimated from the payloads as stored (``held_bytes``): a count of events alone
    lets a few big events fill the memory.
    """

    def __init__(
        self,
        max_events: int,
        on_read: Callable[[bool], None] | None = None,
        max_bytes: int = 512 * 1024 * 1024,
    ) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.events = 0
        self.bytes = 0
        self._on_read = on_read  # told of each stream read: found held (True) or read whole
        self._streams: OrderedDict[str, Stream] = OrderedDict()
        self._frozen_at = 0  # events held at the last gc.freeze()

    def __len__(self) -> int:
        return len(self._streams)

    async def read(
        self, conn: Connection, streams: Sequence[str], known_at: dt.datetime | None
    ) -> Snapshot:
        """Return the given streams as known at ``known_at`` (None: the head), with positions."""
        known_at = _END_OF_TIME if known_at is None else known_at
        streams = list(dict.fromkeys(streams))  # each once
        held = [self._streams.get(name) for name in streams]
        after = [s.version if s is not None else 0 for s in held]
        rows = await read_streams(conn, streams, after, known_at)
        snapshot = Snapshot(known_at=known_at)
        by_stream: dict[str, list[Any]] = {name: [] for name in streams}
        head_recorded = known_at
        for row in rows:
            part = row["part"]
            if part == "s":
                by_stream[row["stream"]].append(row)
            elif part == "p":
                snapshot.position = row["position"]
            elif part == "r":
                snapshot.rules_position = row["position"] or 0
            else:  # "h"
                head_recorded, snapshot.today = row["recorded_at"], row["effective_date"]
        # Nothing recorded after the head's recorded_at exists yet, and nothing appended
        # later can be stamped at or before it (events/planning.py, ``after``): the answer
        # is what the ledger said at the earlier of the two instants, and stays so.
        snapshot.known_at = min(known_at, head_recorded)
        for name, mine in zip(streams, held, strict=True):
            # While this read was out, another may have extended, evicted or added the stream.
            # The rows follow the version this read started from: they extend that object, or
            # (read whole) whichever is held now, skipping what it already has.
            stream = mine if mine is not None else self._streams.get(name) or Stream()
            found = by_stream[name]
            found.sort(key=_version)
            added = stream.extend(found)
            if self._on_read is not None:
                self._on_read(mine is not None)
            self._keep(name, stream, *added)
            snapshot.streams[name] = stream
        # Only growth of what is held freezes (with it, the merges made for it so far): a full
        # cache turning over never does, since each freeze begins with a full collection, a
        # pause that grows with the memory held. Merges are made on every read of a stream
        # not held, so counting them froze, and collected, every few seconds under turnover.
        if self.events >= max(self._frozen_at + FREEZE_AFTER, self._frozen_at * FREEZE_GROWTH):
            self._frozen_at = self.events
            gc.collect()
            gc.freeze()
        return snapshot

    def _keep(self, name: str, stream: Stream, added: int, added_bytes: int) -> None:
        """Hold ``stream`` as the most recently used (it has just grown by ``added`` events)."""
        held = self._streams.pop(name, None)
        if held is not None:  # out, with the size it was counted for
            self.events -= len(held.events) - (added if held is stream else 0)
            self.bytes -= held.size - (added_bytes if held is stream else 0)
        if (
            not stream.events
            or len(stream.events) > self.max_events
            or (stream.size > self.max_bytes)
        ):
            # Nothing to hold (an unknown company: asking for many must not fill memory), or
            # more than the whole cache: read whole every time.
            return
        self._streams[name] = stream
        self.events += len(stream.events)
        self.bytes += stream.size
        while self.events > self.max_events or self.bytes > self.max_bytes:
            _, evicted = self._streams.popitem(last=False)
            self.events -= len(evicted.events)
            self.bytes -= evicted.size


def _version(row: Any) -> int:
    version: int = row["stream_version"]
    return version
