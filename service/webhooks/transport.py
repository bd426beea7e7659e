"""The webhooks' HTTP transport: aiohttp, connecting to checked addresses only.

The client was chosen by measurement (benchmarks/README.md): httpx's pool looks at each of
its connections for every request it places, so its cost per request grows with the sends in
flight, and it delivered a tenth of what aiohttp's client does from the same process.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from service.settings import Settings
from service.webhooks.targets import Resolver, check_addresses

USER_AGENT = "investment-ledger-webhooks/1"
MAX_RESPONSE_BYTES = 4096  # of a receiver's answer, read and dropped
IDLE_CONNECTION_SECONDS = 30.0


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The verifying TLS context every sender of this process shares.

    Loading the system's certificate authorities takes tens of milliseconds of CPU, so a
    process does it once, not each time a dispatcher starts.
    """
    return ssl.create_default_context()


class CheckedResolver(AbstractResolver):
    """Resolves a host for a new connection and returns only addresses that may be used.

    aiohttp connects to the addresses this returns, never to a second resolution of the name
    (its DNS cache is off), so a host that resolves to a public address at registration and to
    127.0.0.1 now (DNS rebinding) is refused here. TLS still verifies the certificate against
    the host name. With ``guard`` off (``LEDGER_WEBHOOK_ALLOW_PRIVATE``) nothing is refused.
    """

    def __init__(self, resolver: Resolver, guard: bool) -> None:
        self._resolver = resolver
        self._guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[ResolveResult]:
        """Return the checked addresses of ``host``; raise TargetError if any is refused."""
        addresses = await self._resolver.resolve(host, port)
        if self._guard:
            addresses = check_addresses(host, addresses)
        elif not addresses:
            raise OSError(f"the host {host!r} does not resolve to any address")
        return [_result(host, address, port) for address in addresses]

    async def close(self) -> None:
        """Nothing to release."""


def _result(host: str, address: str, port: int) -> ResolveResult:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return {
        "hostname": host,
        "host": address,
        "port": port,
        "family": family,
        "proto": 0,
        "flags": socket.AI_NUMERICHOST,
    }


def check_literal(url: URL) -> None:
    """Refuse a URL whose host is a forbidden address literal.

    aiohttp connects to an address literal without asking the resolver, so the check the
    resolver makes for names is made here for literals.
    """
    host = url.raw_host or ""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return
    check_addresses(host, [host.strip("[]")])


class Sender:
    """Posts webhook messages through one aiohttp session; open it inside the event loop.

    One connector serves every endpoint: it keeps its idle connections in a table keyed by
    origin (host, port, TLS), so taking one costs the same however many it holds; that table is
    the pool per origin. It holds as many connections as sends may be in flight, so a send
    never waits for one and its time limit is spent on the receiver alone. No cookies, no
    redirects (each request says so), no proxy or netrc from the environment, no compression.
    """

    def __init__(self, settings: Settings, resolver: Resolver) -> None:
        self._guard = not settings.webhook_allow_private
        connector = aiohttp.TCPConnector(
            limit=settings.webhook_concurrency,
            resolver=CheckedResolver(resolver, self._guard),
            use_dns_cache=False,  # every new connection is resolved and checked afresh
            ssl=_tls_context(),
            keepalive_timeout=IDLE_CONNECTION_SECONDS,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            # One limit for the whole attempt (connect, send, answer), so a receiver that
            # trickles its answer cannot outlast the lease.
            timeout=aiohttp.ClientTimeout(total=settings.webhook_timeout_seconds),
            trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            headers={"user-agent": USER_AGENT},
        )

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str | None]:
        """POST ``body``; return the status and any Retry-After, reading 4 KiB at most."""
        target = URL(url)
        if self._guard:
            check_literal(target)
        async with self._session.post(
            target, data=body, headers=headers, allow_redirects=False
        ) as answer:
            read = 0
            while read < MAX_RESPONSE_BYTES:
                chunk = await answer.content.read(MAX_RESPONSE_BYTES - read)
                if not chunk:
                    break  # the whole answer was read: the connection serves the next send
                read += len(chunk)
            return answer.status, answer.headers.get("retry-after")

    async def aclose(self) -> None:
        """Close every connection."""
        await self._session.close()
