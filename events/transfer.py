"""Data in and out: importing envelopes from JSON lines, exporting the log, verifying an export.

An import appends through the group-commit writer in batches (all or nothing each); every line
must carry its ``event_id``, so importing the same file again appends nothing. A line exported
by ``export`` imports too: what the ledger assigned (position, stream, hash…) is set aside.

An export is one event per line exactly as ``GET /events`` shows it, with its position,
``recorded_at`` and hash; the JSON-valued fields are written as stored, byte for byte, so
:func:`verify_export` recomputes the chain from the file alone, with no database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass

import msgspec

from events import log
from events.chain import format_instant
from events.decoding import decode_append_body
from events.errors import ConflictError, FieldError, LedgerError, StoreUnavailableError
from events.integrity import ChainWalk
from events.records import PreparedEvent, RecordedEvent, StoredRow, prepare
from events.vocabulary import AnyEnvelope
from events.writer import GroupCommitter

IMPORT_BATCH = 500  # lines appended together, all or nothing
EXPORT_CHUNK = 5_000

# What the ledger assigns, present in an exported line and not part of an envelope.
ASSIGNED_FIELDS = ("stream", "stream_version", "position", "recorded_at", "schema_version", "hash")

_shallow = msgspec.json.Decoder(dict[str, msgspec.Raw])
_encoder = msgspec.json.Encoder()


class ImportLineError(LedgerError):
    """A line of an import that cannot be appended; nothing of its batch was."""

    def __init__(self, line: int, error: LedgerError) -> None:
        where = [f"{e.field}: {e.message}" for e in error.errors] or [error.detail]
        extra = {**error.extra, "line": line}
        super().__init__(f"line {line}: {'; '.join(where)}", error.errors, extra)
        self.line = line
        self.status = error.status
        self.cause = error

    def __reduce__(self) -> tuple[object, ...]:
        # A bulk import decodes lines in worker processes, which send their refusals back.
        return type(self), (self.line, self.cause)


class ImportUnconfirmedError(ImportLineError):
    """The database did not confirm a batch: it may or may not be stored."""


@dataclass
class ImportReport:
    """What an import did."""

    lines: int = 0
    appended: int = 0
    already_recorded: int = 0


def _envelope_bytes(line: bytes) -> bytes:
    """Return the envelope of a line, setting aside what an export adds to one."""
    if b'"hash"' not in line or b'"position"' not in line:
        return line
    try:
        fields = _shallow.decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return line  # the decoder below reports it
    if "hash" not in fields or "position" not in fields:
        return line
    return _encoder.encode({k: v for k, v in fields.items() if not _assigned(k, v)})


def _assigned(name: str, value: msgspec.Raw) -> bool:
    """Whether an exported field was assigned by the ledger rather than given by the client.

    An exported ``fact`` is the stored key: a derived one (it holds a colon, which no slug
    does) is derived again on import; an explicit one was the client's and is kept.
    """
    if name == "fact":
        return b":" in bytes(value) or bytes(value) == b"null"
    return name in ASSIGNED_FIELDS


def decode_line(number: int, line: bytes) -> AnyEnvelope:
    """Decode one line of an import into its envelope; errors are placed on its line."""
    try:
        envelopes, is_batch = decode_append_body(_envelope_bytes(line))
    except LedgerError as error:
        raise ImportLineError(number, error) from None
    if is_batch or len(envelopes) != 1:
        message = "must hold one envelope, not a batch"
        raise ImportLineError(number, LedgerError(message, [FieldError("body", message)]))
    if envelopes[0].event_id is None:
        message = "is required in an import, so that importing the file again appends nothing"
        raise ImportLineError(number, LedgerError(message, [FieldError("event_id", message)]))
    return envelopes[0]


def read_batches(
    lines: Iterable[bytes], size: int = IMPORT_BATCH, first: int = 1
) -> Iterator[list[tuple[int, bytes]]]:
    """Yield (line number, line) batches, skipping blank lines; ``first`` is the first's number."""
    batch: list[tuple[int, bytes]] = []
    for number, line in enumerate(lines, start=first):
        if line and not line.isspace():
            batch.append((number, line))
            if len(batch) == size:
                yield batch
                batch = []
    if batch:
        yield batch


async def import_lines(
    committer: GroupCommitter,
    conn: log.Connection,
    lines: Iterable[bytes],
    progress: Callable[[int], None] | None = None,
    batch_size: int = IMPORT_BATCH,
) -> ImportReport:
    """Append every line's envelope, batch by batch; stop at the first bad line.

    A batch whose events are partly recorded already (an import that stopped half-way, a file
    that grew) is appended in two parts: the recorded events, which must be unchanged, and the
    new ones.
    """
    report = ImportReport()
    for batch in read_batches(lines, batch_size):
        envelopes = [decode_line(number, line) for number, line in batch]
        numbers = [number for number, _ in batch]
        try:
            prepared = prepare(envelopes, is_batch=True)
        except LedgerError as error:
            raise at_line(error, numbers) from None
        known = await log.recorded_ids(conn, [e.event_id for e in prepared])
        parts = [
            [(n, e) for n, e in zip(numbers, prepared, strict=True) if e.event_id in known],
            [(n, e) for n, e in zip(numbers, prepared, strict=True) if e.event_id not in known],
        ]
        for part in parts:
            if part:
                await _append(committer, part, report)
        report.lines += len(batch)
        if progress is not None:
            progress(len(batch))
    return report


async def _append(
    committer: GroupCommitter, part: list[tuple[int, PreparedEvent]], report: ImportReport
) -> None:
    numbers = [n for n, _ in part]
    try:
        outcome = await committer.append([e for _, e in part], is_batch=True)
    except ConflictError as error:
        if "mixes events already recorded" in error.detail:  # another writer got there first
            raise ImportLineError(numbers[0], error) from None
        raise at_line(error, numbers) from None
    except StoreUnavailableError as error:
        raise ImportUnconfirmedError(numbers[0], error) from None
    except LedgerError as error:
        raise at_line(error, numbers) from None
    if outcome.appended:
        report.appended += len(part)
    else:
        report.already_recorded += len(part)


def at_line(error: LedgerError, numbers: list[int]) -> ImportLineError:
    """Place a batch's error (``events[i].field``) on the line it came from."""
    first = error.errors[0].field if error.errors else ""
    if first.startswith("events["):
        index = first.removeprefix("events[").partition("]")[0]
        if index.isdigit() and int(index) < len(numbers):
            errors = [
                FieldError(e.field.partition("]")[2].removeprefix(".") or "body", e.message)
                for e in error.errors
            ]
            inner = LedgerError(error.detail, errors)
            inner.status = error.status
            return ImportLineError(numbers[int(index)], inner)
    return ImportLineError(numbers[0], error)


async def export_lines(
    conn: log.Connection, after: int = 0, until: int | None = None
) -> AsyncIterator[bytes]:
    """Yield every event after ``after`` (up to the head when the export began) as a line."""
    last = until if until is not None else await log.head_position(conn)
    while after < last:
        events = await log.read_after(conn, after, min(EXPORT_CHUNK, last - after))
        if not events:
            return
        for event in events:
            yield _encoder.encode(event) + b"\n"
        after = events[-1].position


class _ExportedLine(RecordedEvent, frozen=True, kw_only=True):
    """An exported line as read back, its JSON-valued fields byte for byte."""

    metadata: msgspec.Raw = msgspec.Raw(b"null")  # msgspec decodes no Raw inside a union
    hash: str  # a line without its hash cannot be verified


_exported = msgspec.json.Decoder(_ExportedLine)


@dataclass
class ExportVerification:
    """The outcome of verifying an export: intact, or the first line that is not."""

    intact: bool
    checked: int
    first_position: int | None
    last_position: int | None
    last_hash: str | None
    anchored: bool  # whether the first line's link was checked too
    bad_line: int | None = None
    problem: str | None = None


class _BadLineError(Exception):
    """A line that is not an exported event."""


def _stored_row(line: bytes) -> StoredRow:
    try:
        event = _exported.decode(line)
        stored_hash = bytes.fromhex(event.hash)
        recorded_at = dt.datetime.fromisoformat(event.recorded_at)
        if recorded_at.tzinfo is None or format_instant(recorded_at) != event.recorded_at:
            raise ValueError(f"recorded_at {event.recorded_at!r} is not as exported")
        metadata = None if bytes(event.metadata) == b"null" else bytes(event.metadata).decode()
        return StoredRow(
            position=event.position,
            event_id=event.event_id,
            stream=event.stream,
            stream_version=event.stream_version,
            type=event.type,
            schema_version=event.schema_version,
            effective_date=event.effective_date,
            recorded_at=recorded_at,
            source=bytes(event.source).decode(),
            data=bytes(event.data).decode(),
            metadata=metadata,
            hash=stored_hash,
        )
    except (msgspec.DecodeError, ValueError) as exc:  # UnicodeDecodeError included
        raise _BadLineError(f"not an exported event: {exc}") from None


def verify_export(lines: Iterable[bytes], previous_hash: bytes | None = None) -> ExportVerification:
    """Recompute the chain over an export's lines, in order.

    An export of the whole log starts at position 1, chained to 32 zero bytes. An export that
    starts later (``export --after N``) is chained to the hash of position N: given as
    ``previous_hash``, the first line is checked too; otherwise it is taken as the anchor and
    the lines after it are checked against it.
    """
    walk = ChainWalk(previous_hash, None)
    number = 0  # of the line being read

    def rows() -> Iterator[StoredRow]:
        nonlocal number
        for number, line in enumerate(lines, start=1):  # noqa: B007 (read by the caller)
            if line.strip():
                yield _stored_row(line)

    try:
        broken = walk.follow(rows())
    except _BadLineError as error:
        return _verdict(walk, previous_hash, number, str(error))
    if broken is None:
        return _verdict(walk, previous_hash)
    position = broken.row.position
    if broken.kind == "gap":
        problem = f"expected position {walk.expected}, found {position}: a line is missing"
    else:
        problem = f"position {position} no longer matches its hash"
    return _verdict(walk, previous_hash, number, problem)


def _verdict(
    walk: ChainWalk,
    previous_hash: bytes | None,
    line: int | None = None,
    problem: str | None = None,
) -> ExportVerification:
    """Intact unless a ``problem`` is named, found on ``line``."""
    first = walk.first_position
    last = walk.last
    return ExportVerification(
        intact=problem is None,
        checked=walk.checked,
        first_position=first,
        last_position=last.position if last else None,
        last_hash=last.hash.hex() if last else None,
        # the first line's link is checked when its predecessor's hash is known
        anchored=first is None or previous_hash is not None or first == 1,
        bad_line=line,
        problem=problem,
    )
