"""Registering webhook endpoints, rotating their secrets, and looking at their deliveries."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.params import PathParameter, QueryParameter

from events.decoding import decode_request
from events.errors import FieldError, InvalidRequestError, LedgerError
from events.vocabulary import EVENT_TYPES
from service.http.auth import BEARER, SCOPE_OPT
from service.http.dependencies import Pool, WebhookTargets
from service.http.openapi import json_body
from service.http.problems import problem
from service.schemas import (
    CreatedWebhook,
    DeliveryPage,
    NewWebhook,
    Replay,
    ReplayQueued,
    RotatedSecret,
    Rotation,
    WebhookEndpoint,
    Webhooks,
)
from service.webhooks import registry
from service.webhooks.targets import TargetError

SCOPE = {SCOPE_OPT: "webhooks:manage"}
# Choosing where events go, or sending the log again, hands over events: only to a reader.
READS_THE_LOG = {SCOPE_OPT: ("webhooks:manage", "events:read")}
WebhookId = Annotated[str, PathParameter(pattern=r"^wh_[0-9a-f]{32}$")]


_new_webhook = msgspec.json.Decoder(NewWebhook)
_rotation = msgspec.json.Decoder(Rotation)
_replay = msgspec.json.Decoder(Replay)


class RefusedTargetError(LedgerError):
    """A well-formed URL the service will not send to (scheme, credentials, address)."""

    status = 422
    title = "Webhook target refused"


def _not_found(endpoint_id: str) -> Exception:
    return problem(404, f"no webhook endpoint {endpoint_id}")


def _checked_types(types: list[str] | None) -> list[str] | None:
    if types is None:
        return None
    for i, name in enumerate(types):
        if name not in EVENT_TYPES:
            message = f"unknown event type {name!r}; one of {', '.join(EVENT_TYPES)}"
            raise InvalidRequestError(
                f"event_types[{i}]: {message}", [FieldError(f"event_types[{i}]", message)]
            )
    return sorted(set(types))


class WebhooksController(Controller):
    """``/webhooks``: endpoints, secrets, deliveries and replays."""

    security = BEARER

    path = "/webhooks"
    opt = SCOPE
    tags = ("webhooks",)

    @post(
        "/",
        opt=READS_THE_LOG,
        status_code=201,
        operation_class=json_body(NewWebhook, "The endpoint to register."),
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        pool: Pool,
        webhook_targets: WebhookTargets,
    ) -> CreatedWebhook:
        """Register an endpoint; the answer holds its secret, shown only this once.

        It receives the events appended from now on; ``replay`` sends earlier ones. Needs
        ``events:read`` as well as ``webhooks:manage``: a webhook sends only what its creator
        may read.
        """
        body = decode_request(await request.body(), _new_webhook)
        types = _checked_types(body.event_types)
        try:
            await webhook_targets(body.url)
        except TargetError as exc:
            raise RefusedTargetError(f"url: {exc}", [FieldError("url", str(exc))]) from None
        async with pool.acquire() as conn:
            return await registry.create_endpoint(conn, body.url, types, body.description)

    @get("/")
    async def list_all(self, pool: Pool) -> Webhooks:
        """List every endpoint (never a secret)."""
        async with pool.acquire() as conn:
            return Webhooks(await registry.list_endpoints(conn))

    @get("/{endpoint_id:str}")
    async def show(self, pool: Pool, endpoint_id: WebhookId) -> WebhookEndpoint:
        """Show one endpoint: its filter, whether it is enabled, how far it has been queued."""
        async with pool.acquire() as conn:
            endpoint = await registry.get_endpoint(conn, endpoint_id)
        if endpoint is None:
            raise _not_found(endpoint_id)
        return endpoint

    @delete("/{endpoint_id:str}", status_code=204)
    async def remove(self, pool: Pool, endpoint_id: WebhookId) -> None:
        """Delete an endpoint with its deliveries; nothing more is sent to it."""
        async with pool.acquire() as conn:
            if not await registry.delete_endpoint(conn, endpoint_id):
                raise _not_found(endpoint_id)

    @post(
        "/{endpoint_id:str}/rotate-secret",
        status_code=200,
        operation_class=json_body(Rotation, "Optional; the grace period.", required=False),
    )
    async def rotate(
        self, request: Request[Any, Any, Any], pool: Pool, endpoint_id: WebhookId
    ) -> RotatedSecret:
        """Replace the secret; during the grace period every message carries both signatures."""
        raw = await request.body()
        body = decode_request(raw, _rotation) if raw.strip() else Rotation()
        grace = dt.timedelta(seconds=body.grace_period_seconds)
        async with pool.acquire() as conn:
            rotated = await registry.rotate_secret(conn, endpoint_id, grace)
        if rotated is None:
            raise _not_found(endpoint_id)
        return rotated

    @post("/{endpoint_id:str}/enable", status_code=200)
    async def enable(self, pool: Pool, endpoint_id: WebhookId) -> WebhookEndpoint:
        """Enable a disabled endpoint: what was queued for it, and everything since, goes out."""
        async with pool.acquire() as conn:
            endpoint = await registry.enable_endpoint(conn, endpoint_id)
        if endpoint is None:
            raise _not_found(endpoint_id)
        return endpoint

    @get("/{endpoint_id:str}/deliveries")
    async def deliveries(
        self,
        pool: Pool,
        endpoint_id: WebhookId,
        status: Annotated[
            str | None,
            QueryParameter(
                pattern="^(pending|succeeded|failed)$", description="only deliveries in it"
            ),
        ] = None,
        before: Annotated[
            int | None, QueryParameter(ge=1, le=2**63 - 1, description="ids below this")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> DeliveryPage:
        """List deliveries newest first, each with every attempt: when, how long, the answer."""
        async with pool.acquire() as conn:
            if await registry.get_endpoint(conn, endpoint_id) is None:
                raise _not_found(endpoint_id)
            page = await registry.list_deliveries(conn, endpoint_id, status, before, limit)
        return DeliveryPage(page, page[-1].id if len(page) == limit else None)

    @post(
        "/{endpoint_id:str}/deliveries/{delivery_id:int}/resend",
        status_code=202,
    )
    async def resend(
        self,
        pool: Pool,
        endpoint_id: WebhookId,
        delivery_id: Annotated[int, PathParameter(ge=1, le=2**63 - 1)],
    ) -> Response[None]:
        """Send a failed (or delivered) message again, with a fresh series of attempts."""
        async with pool.acquire() as conn:
            try:
                found = await registry.resend(conn, endpoint_id, delivery_id)
            except registry.ResendRefused as exc:
                raise problem(409, str(exc)) from None
        if not found:
            raise problem(404, f"no delivery {delivery_id} of webhook endpoint {endpoint_id}")
        return Response(None, status_code=202)

    @post(
        "/{endpoint_id:str}/replay",
        opt=READS_THE_LOG,
        status_code=202,
        operation_class=json_body(Replay, "The position after which to send again."),
    )
    async def replay(
        self, request: Request[Any, Any, Any], pool: Pool, endpoint_id: WebhookId
    ) -> ReplayQueued:
        """Queue every matching event after ``after_position`` again; needs ``events:read`` too."""
        body = decode_request(await request.body(), _replay)
        async with pool.acquire() as conn:
            queued = await registry.replay(conn, endpoint_id, body.after_position)
        if queued is None:
            raise _not_found(endpoint_id)
        return queued
