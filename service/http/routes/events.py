"""Appending and reading events."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter, QueryParameter

from events import log
from events.decoding import decode_append_body
from events.errors import LedgerError
from events.records import Receipt, RecordedEvent, prepare
from events.vocabulary import EVENT_TYPES, STREAM_PATTERN
from service.http import metrics
from service.http.auth import BEARER, READS_LOG, SCOPE_OPT
from service.http.dependencies import Committer, Reads
from service.http.openapi import AppendOperation
from service.http.problems import problem
from service.schemas import BatchReceipts, EventPage, StreamPage

MAX_POSITION = 2**63 - 1  # bigint
MAX_VERSION = 2**31 - 1  # integer
# Each outcome's series, looked up once rather than by label on every request.
_APPENDED = metrics.APPENDS.labels("appended")
_REPLAYED = metrics.APPENDS.labels("replayed")
_REFUSED = metrics.APPENDS.labels("refused")


# The 200 of an identical retry is one receipt or a batch's: the document names both shapes.
EITHER_RECEIPT: Any = Receipt | BatchReceipts


class EventsController(Controller):
    """``/events`` and ``/streams``."""

    security = BEARER

    @post(
        "/events",
        opt={SCOPE_OPT: "events:write"},
        status_code=201,
        operation_class=AppendOperation,
        responses={
            200: ResponseSpec(
                data_container=EITHER_RECEIPT,
                description="an identical retry: the receipts of the first time",
                generate_examples=False,
            )
        },
    )
    async def append(
        self, request: Request[Any, Any, Any], committer: Committer
    ) -> Response[Receipt | BatchReceipts]:
        """Append one envelope, or ``{"events": [...]}`` atomically; answer with receipts."""
        started = time.perf_counter()
        try:
            envelopes, is_batch = decode_append_body(await request.body())
            outcome = await committer.append(prepare(envelopes, is_batch), is_batch)
        except LedgerError:
            _REFUSED.inc()
            raise
        metrics.APPEND_SECONDS.observe(time.perf_counter() - started)
        metrics.BATCH_EVENTS.observe(len(envelopes))
        if outcome.appended:
            _APPENDED.inc()
            metrics.EVENTS_APPENDED.inc(len(envelopes))
        else:
            _REPLAYED.inc()
        status = 201 if outcome.appended else 200
        if is_batch:
            return Response(BatchReceipts(outcome.receipts), status_code=status)
        return Response(outcome.receipts[0], status_code=status)

    @get("/events", opt=READS_LOG)
    async def read(
        self,
        reads: Reads,
        after: Annotated[
            int, QueryParameter(ge=0, le=MAX_POSITION, description="position to read after")
        ] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
        type_: Annotated[
            list[str] | None, QueryParameter(name="type", description="event types to include")
        ] = None,
        stream: Annotated[
            str | None,
            QueryParameter(pattern=STREAM_PATTERN, description="company:<id> or export-rule:<id>"),
        ] = None,
    ) -> EventPage:
        """Return events after a position, in position order, optionally filtered."""
        types = event_types(type_)
        events = await reads.read(lambda conn: log.read_after(conn, after, limit, types, stream))
        return EventPage(events, events[-1].position if log.page_is_full(events, limit) else None)

    @get("/events/{event_id:uuid}", opt=READS_LOG)
    async def show(
        self, reads: Reads, event_id: Annotated[uuid.UUID, PathParameter()]
    ) -> RecordedEvent:
        """Return one event."""
        event = await reads.read(lambda conn: log.get_event(conn, event_id))
        if event is None:
            raise problem(404, f"no event {event_id} is in the ledger")
        return event

    @get("/streams/{stream:str}/events", opt=READS_LOG)
    async def read_stream(
        self,
        reads: Reads,
        stream: Annotated[str, PathParameter(pattern=STREAM_PATTERN)],
        after_version: Annotated[int, QueryParameter(ge=0, le=MAX_VERSION)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 1000,
    ) -> StreamPage:
        """Return one stream's events in stream order."""
        events = await reads.read(lambda conn: log.read_stream(conn, stream, after_version, limit))
        last = events[-1].stream_version if log.page_is_full(events, limit) else None
        return StreamPage(stream, events, last)


def event_types(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    types = [t for value in values for t in value.split(",")]
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        message = f"unknown event type {unknown[0]!r}; one of {', '.join(EVENT_TYPES)}"
        raise problem(400, f"type: {message}", errors=[{"field": "type", "message": message}])
    return types
