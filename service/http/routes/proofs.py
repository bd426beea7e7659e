"""The verifiable log: the signed checkpoint, the public key, proofs and receipts."""

from __future__ import annotations

import base64
import uuid
from typing import Annotated

from litestar import Controller, MediaType, Response, get
from litestar.params import PathParameter, QueryParameter

from events import log, tree
from events.leaves import recorded_bytes
from events.notes import receipt_text
from service.checkpoints import CheckpointCache
from service.http.auth import BEARER, READS_LOG
from service.http.dependencies import Checkpoints
from service.http.problems import problem
from service.schemas import ConsistencyProof, InclusionProof

Size = Annotated[
    str | None, QueryParameter(description="a tree size (default: the latest checkpoint's)")
]
Position = Annotated[str | None, QueryParameter(description="the event's position (from 1)")]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _bad(field: str, message: str) -> Exception:
    return problem(400, f"{field}: {message}", errors=[{"field": field, "message": message}])


def _integer(field: str, value: str | None, default: int | None = None) -> int:
    if value is None:
        if default is None:
            raise _bad(field, "is required")
        return default
    if not value.isdigit() or len(value) > 18:
        raise _bad(field, f"{value!r} is not a non-negative integer")
    return int(value)


async def _size(checkpoints: CheckpointCache, field: str, value: str | None) -> int:
    """Return the tree size asked for (default: the latest checkpoint's), up to the latest.

    A size past the checkpoint this process knows may have been signed since (another process
    answered it to the client): the checkpoint is read again before the size is refused.
    """
    signed = await checkpoints.signed()
    size = _integer(field, value, signed.tree_size)
    if size > signed.tree_size:
        await checkpoints.read_now()
        signed = await checkpoints.signed()
    if not 0 < size <= signed.tree_size:
        raise _bad(field, f"{size} is not a tree size from 1 to {signed.tree_size}")
    return size


@get("/ledger/public-key", media_type=MediaType.TEXT, sync_to_thread=False)
def public_key(checkpoints: Checkpoints) -> str:
    """Return the verifier key of the ledger's checkpoints (signed-note vkey); no token needed."""
    if checkpoints.vkey is None:
        raise problem(503, "this service holds no signing key")
    return checkpoints.vkey + "\n"


class ProofsController(Controller):
    """Checkpoints, proofs and receipts (``events:read`` or ``audit``).

    Each handler takes the one dependency ``checkpoints`` (its pool reads the tree): Litestar
    resolves two or more in a task group of their own, which costs a proof more than its query.
    """

    security = BEARER
    opt = READS_LOG

    @get("/ledger/checkpoint", media_type=MediaType.TEXT)
    async def checkpoint(self, checkpoints: Checkpoints) -> str:
        """Return the latest signed checkpoint (c2sp.org/tlog-checkpoint, a signed note)."""
        return (await checkpoints.signed()).note

    @get("/ledger/proofs/inclusion")
    async def inclusion(
        self,
        checkpoints: Checkpoints,
        position: Position = None,
        tree_size: Size = None,
    ) -> InclusionProof:
        """Prove that the event at ``position`` is in the tree of ``tree_size`` events."""
        at = _integer("position", position)
        size = await _size(checkpoints, "tree_size", tree_size)
        if not 0 < at <= size:
            raise _bad("position", f"{at} is not a position from 1 to the tree size {size}")
        leaf, hashes = await tree.inclusion(checkpoints.pool, at - 1, size, checkpoints.memory)
        return InclusionProof(
            leaf_index=at - 1,
            tree_size=size,
            leaf_hash=_b64(leaf),
            hashes=[_b64(h) for h in hashes],
        )

    @get("/ledger/proofs/consistency")
    async def consistency(
        self,
        checkpoints: Checkpoints,
        first: Annotated[
            str | None, QueryParameter(name="from", description="the smaller tree size")
        ] = None,
        second: Annotated[
            str | None,
            QueryParameter(name="to", description="the larger (default: the latest checkpoint's)"),
        ] = None,
    ) -> ConsistencyProof:
        """Prove that the tree of ``to`` events extends the tree of ``from`` events."""
        small = _integer("from", first)
        large = await _size(checkpoints, "to", second)
        if small < 1:
            raise _bad("from", "must be a tree size of at least 1")
        if small > large:
            raise _bad("from", f"{small} is larger than to ({large})")
        hashes = await tree.consistency(checkpoints.pool, small, large, checkpoints.memory)
        return ConsistencyProof(first=small, second=large, hashes=[_b64(h) for h in hashes])

    @get("/events/{event_id:uuid}/receipt", media_type=MediaType.TEXT)
    async def receipt(
        self,
        checkpoints: Checkpoints,
        event_id: Annotated[uuid.UUID, PathParameter()],
    ) -> Response[str]:
        """Return an offline receipt (c2sp.org/tlog-proof@v1) of the event."""
        signed = await checkpoints.signed()
        async with checkpoints.pool.acquire() as conn:
            event = await log.get_event(conn, event_id)
            if event is None:
                raise problem(404, f"no event {event_id} is recorded")
            if event.position > signed.tree_size:
                raise problem(
                    503, f"event {event_id} is not in a signed checkpoint yet; retry shortly"
                )
            _, hashes = await tree.inclusion(
                conn, event.position - 1, signed.tree_size, checkpoints.memory
            )
        text = receipt_text(event.position - 1, hashes, signed.note, recorded_bytes(event))
        return Response(text, media_type=MediaType.TEXT)
