"""Registering webhook endpoints, rotating their secrets, and looking at their deliveries."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.params import PathParameter, QueryParameter
from msgspec import Meta, Struct

from events.decoding import decode_request
from events.errors import FieldError, InvalidRequestError, LedgerError
from events.vocabulary import EVENT_TYPES, TEXT_PATTERN
from service.auth import BEARER, SCOPE_OPT
from service.openapi import json_body
from service.problems import problem
from service.webhooks import registry
from service.webhooks.targets import TargetError, check_target

SCOPE = {SCOPE_OPT: "webhooks:manage"}
# Choosing where events go, or sending the log again, hands over events: only to a reader.
READS_THE_LOG = {SCOPE_OPT: ("webhooks:manage", "events:read")}
MAX_GRACE_SECONDS = 7 * 86400
DEFAULT_GRACE_SECONDS = 86400
WebhookId = Annotated[str, PathParameter(pattern=r"^wh_[0-9a-f]{32}$")]


EventTypeName = Annotated[str, Meta(extra_json_schema={"enum": list(EVENT_TYPES)})]


class NewWebhook(Struct, frozen=True, forbid_unknown_fields=True):
    """An endpoint to register: where to POST, which event types (all when omitted)."""

    url: Annotated[str, Meta(max_length=2048, pattern=TEXT_PATTERN)]
    event_types: Annotated[list[str], Meta(min_length=1, max_length=len(EVENT_TYPES))] | None = None
    description: Annotated[str, Meta(max_length=500, pattern=TEXT_PATTERN)] = ""


class Rotation(Struct, frozen=True, forbid_unknown_fields=True):
    """How long the current secret keeps signing beside the new one (default a day)."""

    grace_period_seconds: Annotated[int, Meta(ge=0, le=MAX_GRACE_SECONDS)] = DEFAULT_GRACE_SECONDS


class Replay(Struct, frozen=True, forbid_unknown_fields=True):
    """Send again every matching event after this position."""

    after_position: Annotated[int, Meta(ge=0, le=2**63 - 1)]


class Webhooks(Struct, frozen=True):
    """Every registered endpoint."""

    webhooks: list[registry.WebhookEndpoint]


class DeliveryPage(Struct, frozen=True):
    """Deliveries newest first; ``next_before`` continues the list, or is null at its end."""

    deliveries: list[registry.Delivery]
    next_before: int | None


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
    async def create(self, request: Request[Any, Any, Any]) -> registry.CreatedWebhook:
        """Register an endpoint; the answer holds its secret, shown only this once.

        It receives the events appended from now on; ``replay`` sends earlier ones. Needs
        ``events:read`` as well as ``webhooks:manage``: a webhook sends only what its creator
        may read.
        """
        body = decode_request(await request.body(), _new_webhook)
        types = _checked_types(body.event_types)
        settings = request.app.state.settings
        try:
            await check_target(body.url, request.app.state.resolver, settings.webhook_allow_private)
        except TargetError as exc:
            raise RefusedTargetError(f"url: {exc}", [FieldError("url", str(exc))]) from None
        async with request.app.state.pool.acquire() as conn:
            return await registry.create_endpoint(conn, body.url, types, body.description)

    @get("/")
    async def list_all(self, request: Request[Any, Any, Any]) -> Webhooks:
        """List every endpoint (never a secret)."""
        async with request.app.state.pool.acquire() as conn:
            return Webhooks(await registry.list_endpoints(conn))

    @get("/{endpoint_id:str}")
    async def show(
        self, request: Request[Any, Any, Any], endpoint_id: WebhookId
    ) -> registry.WebhookEndpoint:
        """Show one endpoint: its filter, whether it is enabled, how far it has been queued."""
        async with request.app.state.pool.acquire() as conn:
            endpoint = await registry.get_endpoint(conn, endpoint_id)
        if endpoint is None:
            raise _not_found(endpoint_id)
        return endpoint

    @delete("/{endpoint_id:str}", status_code=204)
    async def remove(self, request: Request[Any, Any, Any], endpoint_id: WebhookId) -> None:
        """Delete an endpoint with its deliveries; nothing more is sent to it."""
        async with request.app.state.pool.acquire() as conn:
            if not await registry.delete_endpoint(conn, endpoint_id):
                raise _not_found(endpoint_id)

    @post(
        "/{endpoint_id:str}/rotate-secret",
        status_code=200,
        operation_class=json_body(Rotation, "Optional; the grace period.", required=False),
    )
    async def rotate(
        self, request: Request[Any, Any, Any], endpoint_id: WebhookId
    ) -> registry.RotatedSecret:
        """Replace the secret; during the grace period every message carries both signatures."""
        raw = await request.body()
        body = decode_request(raw, _rotation) if raw.strip() else Rotation()
        grace = dt.timedelta(seconds=body.grace_period_seconds)
        async with request.app.state.pool.acquire() as conn:
            rotated = await registry.rotate_secret(conn, endpoint_id, grace)
        if rotated is None:
            raise _not_found(endpoint_id)
        return rotated

    @post("/{endpoint_id:str}/enable", status_code=200)
    async def enable(
        self, request: Request[Any, Any, Any], endpoint_id: WebhookId
    ) -> registry.WebhookEndpoint:
        """Enable a disabled endpoint: what was queued for it, and everything since, goes out."""
        async with request.app.state.pool.acquire() as conn:
            endpoint = await registry.enable_endpoint(conn, endpoint_id)
        if endpoint is None:
            raise _not_found(endpoint_id)
        return endpoint

    @get("/{endpoint_id:str}/deliveries")
    async def deliveries(
        self,
        request: Request[Any, Any, Any],
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
        async with request.app.state.pool.acquire() as conn:
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
        request: Request[Any, Any, Any],
        endpoint_id: WebhookId,
        delivery_id: Annotated[int, PathParameter(ge=1, le=2**63 - 1)],
    ) -> Response[None]:
        """Send a failed (or delivered) message again, with a fresh series of attempts."""
        async with request.app.state.pool.acquire() as conn:
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
        self, request: Request[Any, Any, Any], endpoint_id: WebhookId
    ) -> registry.ReplayQueued:
        """Queue every matching event after ``after_position`` again; needs ``events:read`` too."""
        body = decode_request(await request.body(), _replay)
        async with request.app.state.pool.acquire() as conn:
            queued = await registry.replay(conn, endpoint_id, body.after_position)
        if queued is None:
            raise _not_found(endpoint_id)
        return queued
