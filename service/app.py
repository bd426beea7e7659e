"""The composition root: ``create_app()`` builds the service; its lifespan owns the resources."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from litestar import Litestar, Response, Router, get
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.response import Redirect
from litestar.static_files import create_static_files_router

from events.migrate import migrate
from events.writer import GroupCommitter
from projections import projector
from service.api_docs import DOCS_ASSETS, SwaggerPage, docs_router
from service.auth import ScopeCheck, allowed_methods
from service.database import create_pool, database_url
from service.keys import KeyCache
from service.limits import InFlight, RateLimiter
from service.logs import RequestIds, stamp_response
from service.metrics import request_metrics
from service.notifications import APPENDED_CHANNEL, Listener
from service.problems import PROBLEM_RESPONSES, problem_details_plugin, unexpected_error
from service.queries import RuleCache
from service.routes.events import EventsController
from service.routes.health import health, live, metrics, ready
from service.routes.ledger import LedgerController
from service.routes.queries import QueriesController
from service.routes.webhooks import WebhooksController
from service.settings import Settings
from service.streams import StreamCache
from service.webhooks.dispatcher import Dispatcher
from service.webhooks.registry import WEBHOOKS_CHANNEL
from service.webhooks.targets import Resolver, SystemResolver

log = logging.getLogger(__name__)
FULL_COLLECTION_EVERY = 1000  # collections of the middle generation (the default is 10)


def start_projector(pool: asyncpg.Pool, listener: Listener) -> asyncio.Task[None]:
    """Run the projector in the background, woken by every append's NOTIFY."""
    wake = asyncio.Event()
    listener.subscribe(APPENDED_CHANNEL, lambda _: wake.set())
    listener.on_connect(wake.set)  # notifications may have been missed: look now
    return asyncio.create_task(projector.run(pool, wake), name="ledger-projector")


def start_dispatcher(
    pool: asyncpg.Pool, listener: Listener, settings: Settings, resolver: Resolver
) -> asyncio.Task[None]:
    """Run a webhook dispatcher in the background, woken by appends and by queued resends."""
    dispatcher = Dispatcher(pool, settings, resolver)
    listener.subscribe(APPENDED_CHANNEL, lambda _: dispatcher.wake())
    listener.subscribe(WEBHOOKS_CHANNEL, lambda _: dispatcher.wake())
    listener.on_connect(dispatcher.wake)
    return asyncio.create_task(dispatcher.run(), name="ledger-webhooks")


async def stop_task(task: asyncio.Task[None]) -> None:
    """Cancel a background task and wait for it to end."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


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


def create_app(settings: Settings | None = None, resolver: Resolver | None = None) -> Litestar:
    """Build the service for ``settings`` (default: from the environment).

    ``resolver`` resolves webhook hosts (default: the system's resolver).
    """
    settings = settings or Settings.from_env()
    resolver = resolver or SystemResolver()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        url = await asyncio.to_thread(database_url, settings)
        conn = await asyncpg.connect(url)
        try:
            applied = await migrate(conn)
        finally:
            await conn.close()
        if applied:
            log.info("applied migrations: %s", ", ".join(applied))
        pool = await create_pool(url, settings.pool_size, settings.request_timeout_seconds)
        listener = Listener(url)
        keys = KeyCache(pool)
        keys.listen(listener)
        projector = start_projector(pool, listener)
        dispatcher = start_dispatcher(pool, listener, settings, resolver)
        listener.start()
        committer = GroupCommitter(
            pool,
            max_queue=settings.append_queue_limit,
            answer_within=settings.request_timeout_seconds,
        )
        committer.start()
        app.state.update(
            pool=pool,
            api_keys=keys,
            committer=committer,
            settings=settings,
            verify_lock=asyncio.Lock(),
            rules=RuleCache(),
            streams=StreamCache(settings.stream_cache_events),
            resolver=resolver,
        )
        # Everything built so far lives as long as the process: keep the collector off it, and
        # run full collections rarely: each is a pause every request in flight waits out.
        thresholds = gc.get_threshold()
        gc.set_threshold(thresholds[0], thresholds[1], FULL_COLLECTION_EVERY)
        try:
            yield
        finally:
            # In-flight and queued appends are committed and answered before the pool closes.
            await committer.stop()
            await stop_task(projector)
            await stop_task(dispatcher)
            await listener.stop()
            await pool.close()
            gc.set_threshold(*thresholds)

    handlers: list[Any] = [
        EventsController,
        LedgerController,
        QueriesController,
        WebhooksController,
        health,
        live,
        ready,
        home,
        metrics,
    ]
    document_problems(handlers)
    app = Litestar(
        route_handlers=[*handlers, explorer(), docs_assets()],
        lifespan=[lifespan],
        middleware=[
            RequestIds(),
            InFlight(settings.max_concurrent_requests),
            request_metrics().middleware,
            ScopeCheck(),
        ],
        before_send=[stamp_response],
        logging_config=None,  # the command line configures logging (service/logs.py)
        plugins=[problem_details_plugin()],
        exception_handlers={Exception: unexpected_error},
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Investment ledger",
            version="0.1.0",
            description="Immutable private-market facts with point-in-time answers.",
            path="/schema",
            openapi_router=docs_router(),
            render_plugins=[SwaggerPage()],
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
