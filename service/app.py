"""The composition root: ``create_app()`` builds the service; its lifespan owns the resources."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from litestar import Litestar, Response, Router, get
from litestar.datastructures import State
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.response import Redirect
from litestar.static_files import create_static_files_router

from events.planning import Row
from events.tree_memory import TreeMemory
from projections.answers import RuleCache
from projections.stream_cache import StreamCache
from service.bootstrap import database, group_committer, standbys, subscription_hub, workers
from service.checkpoints import CheckpointCache
from service.http.api_docs import DOCS_ASSETS, SwaggerPage, docs_router
from service.http.auth import ScopeCheck, allowed_methods
from service.http.deadlines import RequestDeadline
from service.http.dependencies import ReadSide, dependencies
from service.http.limits import InFlight, RateLimiter
from service.http.logs import stamp_response
from service.http.metrics import STREAM_READS, SUBSCRIBERS_CUT, request_metrics
from service.http.openapi import SharedSchemas
from service.http.problems import PROBLEM_RESPONSES, problem_details_plugin, unexpected_error
from service.http.routes.events import EventsController
from service.http.routes.health import health, live, metrics, ready
from service.http.routes.ledger import LedgerController
from service.http.routes.proofs import ProofsController, public_key
from service.http.routes.queries import QueriesController
from service.http.routes.subscriptions import subscribe
from service.http.routes.webhooks import WebhooksController
from service.http.served_by import stamp_served_by
from service.http.slow_clients import BodyDeadline
from service.keys import KeyCache
from service.settings import Settings
from service.signing import load_signer
from service.webhooks.targets import Resolver, SystemResolver

FULL_COLLECTION_EVERY = 1000  # collections of the middle generation (the default is 10)


def count_stream_reads() -> Callable[[bool], None]:
    """Return what the stream cache calls on each read: found held (perhaps extended), or not."""
    hits, misses = STREAM_READS.labels(result="hit"), STREAM_READS.labels(result="miss")

    def count(held: bool) -> None:
        (hits if held else misses).inc()

    return count


UI_DIRECTORY = Path(__file__).parent / "ui"
# The explorer loads nothing but its own files and talks to nothing but this service.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def _page_headers(response: Response[object]) -> Response[object]:
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@get("/", include_in_schema=False)
async def home() -> Redirect:
    """Send a browser to the explorer."""
    return Redirect("/ui/")


def docs_assets() -> Router:
    """Swagger UI's files, served here: the docs page works offline and loads nothing foreign."""
    from swagger_ui_bundle import swagger_ui_path

    return create_static_files_router(
        path=DOCS_ASSETS, directories=[Path(str(swagger_ui_path))], name="docs-assets"
    )


def explorer() -> Router:
    """The explorer's static files at /ui (public: it asks for a token itself)."""
    return create_static_files_router(
        path="/ui",
        directories=[UI_DIRECTORY],
        html_mode=True,
        name="explorer",
        after_request=_page_headers,
    )


def document_problems(handlers: list[Any]) -> None:
    """Let every operation's OpenAPI entry list the problems it may answer with."""
    for owner in handlers:
        routes = (
            [v for v in vars(owner).values() if isinstance(v, HTTPRouteHandler)]
            if isinstance(owner, type)
            else [owner]
        )
        for route in routes:
            route.responses = {**PROBLEM_RESPONSES, **(route.responses or {})}


@contextlib.contextmanager
def collecting_rarely() -> Iterator[None]:
    """Keep the collector off what lives as long as the process, and run full collections rarely."""
    # Everything built so far lives as long as the process: keep the collector off it, so
    # that full collections stay short (they otherwise rescan it all, tens of ms each).
    gc.freeze()
    # And run them a hundred times less often than by default (about once a minute at
    # thousands of requests a second rather than every second): each is a pause that every
    # request in flight waits out, and what they find (cycles that lived long enough to be
    # promoted) is little. The young generations are collected as usual.
    thresholds = gc.get_threshold()
    gc.set_threshold(thresholds[0], thresholds[1], FULL_COLLECTION_EVERY)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def create_app(settings: Settings | None = None, resolver: Resolver | None = None) -> Litestar:
    """Build the service for ``settings`` (default: from the environment).

    ``resolver`` resolves webhook hosts (default: the system's resolver).
    """
    settings = settings or Settings.from_env()
    resolver = resolver or SystemResolver()

    # Not empty: Litestar replaces an empty (falsy) State with one of its own, and the
    # providers must read the very state the lifespan fills.
    state = State({"settings": settings, "resolver": resolver})

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            db = await stack.enter_async_context(database(settings))
            keys = KeyCache(db.pool)
            hub = await stack.enter_async_context(
                subscription_hub(db, settings, SUBSCRIBERS_CUT.inc)
            )
            listening = [keys.listen, hub.listen]
            signer = load_signer(settings, create=True)
            committed: list[Callable[[list[Row]], None]] = []  # the notary's, if it runs here
            await stack.enter_async_context(
                workers(db, settings, resolver, listening, signer=signer, committed=committed)
            )
            replicas = await stack.enter_async_context(standbys(db, settings))
            committer = await stack.enter_async_context(
                group_committer(db.pool, settings, committed)
            )
            streams = StreamCache(
                settings.stream_cache_events, count_stream_reads(), settings.stream_cache_bytes
            )
            rules = RuleCache()
            checkpoints = CheckpointCache(
                db.pool,
                settings.checkpoint_interval_seconds / 4,
                signer.vkey if signer else None,
                TreeMemory(settings.tree_cache_bytes) if settings.tree_cache_bytes else None,
            )
            stack.push_async_callback(checkpoints.close)
            await checkpoints.latest()  # and start copying the tree into memory
            state.update(
                pool=db.pool,
                api_keys=keys,
                committer=committer,
                verify_lock=asyncio.Lock(),
                rules=rules,
                streams=streams,
                reads=ReadSide(db.pool, streams, rules, replicas),
                hub=hub,
                checkpoints=checkpoints,
            )
            with collecting_rarely():
                yield

    handlers: list[Any] = [
        EventsController,
        LedgerController,
        ProofsController,
        QueriesController,
        WebhooksController,
        subscribe,
        health,
        live,
        ready,
        home,
        metrics,
        public_key,
    ]
    document_problems(handlers)
    app = Litestar(
        route_handlers=[*handlers, explorer(), docs_assets()],
        state=state,
        dependencies=dependencies(state),
        lifespan=[lifespan],
        middleware=[
            BodyDeadline(settings.body_timeout_seconds, settings.max_body_bytes),
            InFlight(settings.max_concurrent_requests),
            RequestDeadline(settings.request_timeout_seconds),
            request_metrics().middleware,
            ScopeCheck(),
        ],
        before_send=[stamp_response, stamp_served_by],
        logging_config=None,  # the command line configures logging (service/http/logs.py)
        plugins=[problem_details_plugin()],
        exception_handlers={Exception: unexpected_error},
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Investment ledger",
            version="0.1.0",
            description="Immutable private-market facts with point-in-time answers.",
            path="/schema",
            openapi_router=docs_router(),
            render_plugins=[SwaggerPage(), SharedSchemas()],
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="ldg_…")
                }
            ),
        ),
    )
    app.state.allowed_methods = allowed_methods(app.routes)
    app.state.rate_limiter = RateLimiter(settings.rate_limit, settings.rate_burst)
    return app
