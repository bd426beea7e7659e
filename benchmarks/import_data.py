"""The JSON-lines file bench_import.py imports: the same log bench_queries.py loads, with ids."""

from __future__ import annotations

import random
import uuid
from pathlib import Path
from typing import Any

import msgspec
from query_data import LogPlan

_encoder = msgspec.json.Encoder()


def write_lines(path: Path, events: int, companies: int) -> dict[str, int]:
    """Write ``events`` envelopes, each with its event_id, one per line; return their kinds.

    About 2% are corrections of earlier valuations, so the import checks targets as it goes.
    """
    plan = LogPlan(events, companies)
    ids = random.Random(7)
    with path.open("wb") as out:
        for envelope, slot in plan.events():
            event_id = uuid.UUID(int=ids.getrandbits(128), version=4)
            envelope = msgspec.structs.replace(envelope, event_id=event_id)
            plan.learn([envelope], [slot])
            out.write(_encoder.encode(envelope) + b"\n")
    kinds: dict[str, Any] = dict(plan.kinds)
    return kinds
