"""Decoding an import's lines in worker processes: validated, prepared, sent back as msgpack.

Decoding and validating a line, and encoding its envelope canonically, depend on that line
alone, so groups of lines are decoded in parallel, in processes of their own, and handed back
in file order. The first refused line of a group ends it: the group's batches before that line's
batch come back with the refusal.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import itertools
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

import msgspec

from events.errors import LedgerError
from events.records import PreparedEvent, prepare
from events.transfer import IMPORT_BATCH, ImportLineError, at_line, decode_line, read_batches

GROUP_BATCHES = 20  # batches written in one transaction: 10,000 lines at most
AHEAD = 4  # groups being decoded ahead of the one being written

Lines = list[tuple[int, bytes]]


class WireEvent(msgspec.Struct, gc=False):
    """A prepared event as a worker sends it back (a PreparedEvent's fields, in its order).

    msgpack carries it at a fraction of pickle's cost, which would otherwise exceed decoding.
    """

    event_id: uuid.UUID
    client_chose_id: bool
    type: str
    stream: str | None
    effective_date: dt.date
    source: str
    data: str
    metadata: str | None
    expected_version: int | None
    target_event_id: uuid.UUID | None
    replacement: dict[str, object] | None
    replacement_date: dt.date | None
    fact: str | None = None


Batch = tuple[list[int], list[WireEvent]]  # line numbers and their events

_to_wire = msgspec.msgpack.Encoder()
_from_wire = msgspec.msgpack.Decoder(list[Batch])


def prepared_event(event: WireEvent) -> PreparedEvent:
    """Return the PreparedEvent a wire event was made from (for the writer's own planner)."""
    return PreparedEvent(**msgspec.structs.asdict(event))


@dataclass(slots=True)
class Decoded:
    """A group's batches as decoded, up to the first bad line (msgpack of ``list[Batch]``)."""

    batches: bytes
    refusal: ImportLineError | None = None  # the first bad line; its batch is not in batches

    def unpacked(self) -> list[Batch]:
        """Return the batches."""
        return _from_wire.decode(self.batches)


def decode_group(batches: list[Lines]) -> Decoded:
    """Decode and prepare each batch of a group; stop at the first bad line."""
    done: list[tuple[list[int], list[PreparedEvent]]] = []
    refusal = None
    with collection_paused():
        for batch in batches:
            numbers = [number for number, _ in batch]
            try:
                done.append((numbers, _prepared(batch, numbers)))
            except ImportLineError as error:
                refusal = error
                break
        return Decoded(_to_wire.encode(done), refusal)


@contextlib.contextmanager
def collection_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: a group's objects hold no cycles, and collections
    triggered by their number would only rescan them (a third of the time otherwise)."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _prepared(batch: Lines, numbers: list[int]) -> list[PreparedEvent]:
    envelopes = [decode_line(number, line) for number, line in batch]
    try:
        return prepare(envelopes, is_batch=True)
    except LedgerError as error:
        raise at_line(error, numbers) from None


@dataclass(slots=True)
class Chunk:
    """Lines of a file as read, for a worker to number, batch and decode."""

    first: int  # the number of the first line
    lines: list[bytes]
    batch_size: int


def read_chunks(
    lines: Iterable[bytes], batch_size: int = IMPORT_BATCH, group_batches: int = GROUP_BATCHES
) -> Iterator[Chunk]:
    """Yield the file a group's worth of lines at a time (blank lines are skipped later).

    The lines go to the workers as they are read: numbering and batching them there keeps a
    Python loop over every line out of this process, which plans and writes.
    """
    lines = iter(lines)
    first = 1
    while chunk := list(itertools.islice(lines, batch_size * group_batches)):
        yield Chunk(first, chunk, batch_size)
        first += len(chunk)


def decode_chunk(chunk: Chunk) -> Decoded:
    """Number, batch and decode a chunk of lines; stop at the first bad line."""
    return decode_group(list(read_batches(chunk.lines, chunk.batch_size, chunk.first)))


def _watch_parent(parent: int) -> None:
    """End this worker when the importing process is gone (killed, it cannot say so)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def default_workers() -> int:
    """Return how many decoding processes suit this machine: one per core."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def decoder_pool(workers: int) -> ProcessPoolExecutor:
    """Start ``workers`` processes that decode groups of lines."""
    return ProcessPoolExecutor(
        workers,
        mp_context=get_context("spawn"),  # the importer runs threads (the progress bar)
        initializer=_watch_parent,
        initargs=(os.getpid(),),
    )


async def decoded_groups(groups: Iterator[Chunk], pool: Executor | None) -> AsyncIterator[Decoded]:
    """Decode groups in order, keeping the pool's workers busy a few groups ahead."""
    if pool is None:
        for group in groups:
            yield decode_chunk(group)
        return
    pending: deque[Future[Decoded]] = deque()
    try:
        for group in groups:
            pending.append(pool.submit(decode_chunk, group))
            if len(pending) >= AHEAD:
                yield await asyncio.wrap_future(pending.popleft())
        while pending:
            yield await asyncio.wrap_future(pending.popleft())
    finally:
        for future in pending:
            future.cancel()
