"""The webhooks' HTTP transport: one client per origin, connecting to checked addresses only."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from service.settings import Settings
from service.webhooks.targets import Resolver, TargetError, addresses_of, check_addresses

USER_AGENT = "investment-ledger-webhooks/1"
MAX_ORIGINS = 1000  # clients kept at once; beyond, idle ones are closed
IDLE_CLIENT_SECONDS = 300.0


class PinnedStream(httpcore.AsyncNetworkStream):
    """A connection whose socket is looked up once, not on every pass over the pool.

    httpcore asks each idle connection for its socket whenever it places a request, and anyio
    rebuilds a table of attributes to answer; at hundreds of requests a second that adds up.
    """

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        """Read from the connection."""
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Write to the connection."""
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        """Close the connection."""
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> httpcore.AsyncNetworkStream:
        """Wrap the connection in TLS."""
        return PinnedStream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        """Answer ``socket`` from memory, anything else from the connection."""
        return self._socket if info == "socket" else self._inner.get_extra_info(info)


class Backend(httpcore.AsyncNetworkBackend):
    """Opens connections, only to public addresses unless ``guard`` is off.

    With the guard on, the host is resolved here, every address is checked, and the connection
    goes to a checked address: a name cannot resolve to one address for the check and another
    for the connect. TLS still verifies the certificate against the host name.
    """

    def __init__(self, resolver: Resolver, guard: bool) -> None:
        self._resolver = resolver
        self._guard = guard
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve, check, then connect to the first checked address that answers."""
        if not self._guard:
            return PinnedStream(
                await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
            )
        addresses = check_addresses(host, await addresses_of(self._resolver, host, port))
        last: Exception | None = None
        for address in addresses:
            try:
                return PinnedStream(
                    await self._inner.connect_tcp(
                        address, port, timeout, local_address, socket_options
                    )
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Unix sockets are never a webhook target."""
        raise TargetError("unix sockets are not webhook targets")

    async def sleep(self, seconds: float) -> None:
        """Sleep, as the connection pool asks."""
        await self._inner.sleep(seconds)


class Clients:
    """One httpx client per origin (scheme, host, port), sharing one TLS context.

    httpcore's pool looks at each of its connections for every request it places, so one pool
    for every endpoint would cost more per request the more endpoints there are; a pool per
    origin stays small. Clients send no cookies, follow no redirects and take no proxy from the
    environment. The dispatcher's own bound limits the sends in flight across all of them.
    """

    def __init__(self, settings: Settings, resolver: Resolver) -> None:
        self._settings = settings
        self._backend = Backend(resolver, guard=not settings.webhook_allow_private)
        self._ssl = httpx.create_ssl_context()
        self._clients: dict[tuple[str, str, int | None], httpx.AsyncClient] = {}
        self._used: dict[tuple[str, str, int | None], float] = {}
        self._closing: set[asyncio.Task[None]] = set()
        # Each request would be logged at INFO with its URL; outcomes are recorded instead.
        logging.getLogger("httpx").setLevel(logging.WARNING)

    def for_url(self, url: httpx.URL) -> httpx.AsyncClient:
        """Return the client for ``url``'s origin, made on first use."""
        origin = (url.scheme, url.host, url.port)
        now = time.monotonic()
        client = self._clients.get(origin)
        if client is None:
            if len(self._clients) >= MAX_ORIGINS:  # endpoints come and go
                self._close_idle(now)
            client = self._clients[origin] = self._make()
        self._used[origin] = now
        return client

    def _close_idle(self, now: float) -> None:
        """Close the clients of origins unused for a while (no send can still be on them)."""
        for origin, used in list(self._used.items()):
            if now - used > IDLE_CLIENT_SECONDS:
                del self._used[origin]
                task = asyncio.create_task(self._clients.pop(origin).aclose())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

    def _make(self) -> httpx.AsyncClient:
        # As many connections as sends in flight: a send never waits for a connection, so its
        # time limit is spent on the receiver alone.
        limits = httpx.Limits(
            max_connections=self._settings.webhook_concurrency,
            max_keepalive_connections=self._settings.webhook_concurrency,
        )
        transport = httpx.AsyncHTTPTransport(verify=self._ssl, limits=limits, trust_env=False)
        # The same pool, with connections opened through the backend above.
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=self._ssl,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=self._backend,
        )
        return httpx.AsyncClient(
            transport=transport,
            timeout=self._settings.webhook_timeout_seconds,
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": USER_AGENT},
        )

    async def aclose(self) -> None:
        """Close every client."""
        clients = list(self._clients.values())
        self._clients.clear()
        for client in clients:
            await client.aclose()
        await asyncio.gather(*self._closing, return_exceptions=True)
