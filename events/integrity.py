"""Recomputing the hash chain to prove that stored history was never rewritten."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable

from msgspec import Struct

from events.chain import GENESIS, chain, event_bytes
from events.log import Connection


class VerifyReport(Struct, frozen=True, kw_only=True):
    """The outcome of a verification: intact, or the first position that no longer matches."""

    intact: bool
    checked: int
    head_position: int
    head_hash: str
    first_bad_position: int | None = None
    problem: str | None = None


class StoredRow(Struct, frozen=True, kw_only=True):
    """The stored columns the chain covers, as read from the table or from an export."""

    position: int
    event_id: object
    stream: str
    stream_version: int
    type: str
    schema_version: int
    effective_date: object
    recorded_at: object
    source: str
    data: str
    metadata: str | None
    hash: bytes


def verify_rows(rows: Iterable[StoredRow], head: tuple[int, bytes] | None = None) -> VerifyReport:
    """Recompute the chain over rows in position order; compare with a recorded head if given."""
    previous, expected_position, checked = GENESIS, 1, 0
    for row in rows:
        problem = _check(row, previous, expected_position)
        if problem is not None:
            return _bad(expected_position, problem, checked, previous)
        previous, expected_position, checked = row.hash, row.position + 1, checked + 1
    return _finish(checked, previous, head)


async def verify_store(
    conn: Connection, progress: Callable[[int], None] | None = None, chunk: int = 2_000
) -> VerifyReport:
    """Recompute the chain over the whole stored log, reading it in position order."""
    # The chain is checked up to the head as it was when verification began: events appended
    # meanwhile are left for the next verification rather than mistaken for a mismatch.
    head_row = await conn.fetchrow("SELECT position, hash FROM ledger_head")
    assert head_row is not None
    previous, expected_position, checked = GENESIS, 1, 0
    async for row in _stored_rows(conn, chunk, head_row["position"]):
        problem = _check(row, previous, expected_position)
        if problem is not None:
            return _bad(expected_position, problem, checked, previous)
        previous, expected_position, checked = row.hash, row.position + 1, checked + 1
        if progress is not None and checked % chunk == 0:
            progress(checked)
    return _finish(checked, previous, (head_row["position"], bytes(head_row["hash"])))


async def _stored_rows(conn: Connection, chunk: int, last: int) -> AsyncIterator[StoredRow]:
    after = 0
    while True:
        rows = await conn.fetch(
            """SELECT position, event_id, stream, stream_version, type, schema_version,
                      effective_date, recorded_at, source::text AS source, data::text AS data,
                      metadata::text AS metadata, hash
               FROM events WHERE position > $1 AND position <= $3 ORDER BY position LIMIT $2""",
            after,
            chunk,
            last,
        )
        if not rows:
            return
        for r in rows:
            yield StoredRow(
                position=r["position"],
                event_id=r["event_id"],
                stream=r["stream"],
                stream_version=r["stream_version"],
                type=r["type"],
                schema_version=r["schema_version"],
                effective_date=r["effective_date"],
                recorded_at=r["recorded_at"],
                source=r["source"],
                data=r["data"],
                metadata=r["metadata"],
                hash=bytes(r["hash"]),
            )
        after = rows[-1]["position"]


def _check(row: StoredRow, previous: bytes, expected_position: int) -> str | None:
    if row.position != expected_position:
        return f"expected position {expected_position}, found {row.position}: the log has a gap"
    computed = chain(
        previous,
        event_bytes(
            position=row.position,
            event_id=row.event_id,  # type: ignore[arg-type]
            stream=row.stream,
            stream_version=row.stream_version,
            type=row.type,
            schema_version=row.schema_version,
            effective_date=row.effective_date,  # type: ignore[arg-type]
            recorded_at=row.recorded_at,  # type: ignore[arg-type]
            source=row.source,
            data=row.data,
            metadata=row.metadata,
        ),
    )
    if computed != row.hash:
        return "the stored content no longer matches its hash"
    return None


def _bad(position: int, problem: str, checked: int, previous: bytes) -> VerifyReport:
    return VerifyReport(
        intact=False,
        checked=checked,
        head_position=position - 1,
        head_hash=previous.hex(),
        first_bad_position=position,
        problem=problem,
    )


def _finish(checked: int, last: bytes, head: tuple[int, bytes] | None) -> VerifyReport:
    if head is not None and (head[0] != checked or head[1] != last):
        return VerifyReport(
            intact=False,
            checked=checked,
            head_position=checked,
            head_hash=last.hex(),
            # events missing after the last intact one, or the head's own hash is wrong
            first_bad_position=checked + 1 if head[0] > checked else head[0],
            problem="the recorded head does not match the end of the chain",
        )
    return VerifyReport(intact=True, checked=checked, head_position=checked, head_hash=last.hex())
