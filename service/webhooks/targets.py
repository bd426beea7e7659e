"""Where a webhook may be sent: the URL's shape, and the addresses its host resolves to.

A target is checked when it is registered and again whenever a connection to it is opened,
against the addresses of that very connection: a host that resolved to a public address at
registration and to 127.0.0.1 now (DNS rebinding) is refused at send time, because the
connection goes to the address that was checked, never to a second resolution of the name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import Protocol
from urllib.parse import SplitResult, urlsplit

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 2048

# Instance metadata services, which hand out credentials to whoever can reach them.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
    )
)
CARRIER_GRADE_NAT = ipaddress.ip_network("100.64.0.0/10")
UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")


class TargetError(Exception):
    """A webhook target that may not be used; the message says why, for the URL's owner."""


class Resolver(Protocol):
    """Resolves a host name to the addresses a connection could go to."""

    async def resolve(self, host: str, port: int) -> list[str]:
        """Return the addresses of ``host`` (an empty list if it has none)."""
        ...


class SystemResolver:
    """The operating system's resolver (getaddrinfo), run off the event loop."""

    async def resolve(self, host: str, port: int) -> list[str]:
        """Return the addresses of ``host``, IPv4 and IPv6."""
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror:
            return []
        except (UnicodeError, ValueError) as exc:  # an empty or overlong label, say
            raise TargetError(f"the host {host!r} is not a valid name ({exc})") from None
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def addresses_of(resolver: Resolver, host: str, port: int) -> list[str]:
    """Return the addresses a connection to ``host`` could go to (itself, if an address)."""
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        return await resolver.resolve(host, port)


def refusal(address: IPAddress) -> str | None:
    """Return why ``address`` may not receive webhooks, or None if it is a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        # IPv6 forms that carry an IPv4 address reach that address: judge it instead.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is not None:
            return refusal(embedded)
    return next((why for test, why in _REFUSALS if test(address)), None)


# In order: the first that applies names the refusal; an address none applies to is public.
_REFUSALS: tuple[tuple[Callable[[IPAddress], bool], str], ...] = (
    (lambda a: isinstance(a, ipaddress.IPv6Address) and a.is_site_local, "a site-local address"),
    (lambda a: a in METADATA_ADDRESSES, "a cloud metadata address"),
    (lambda a: a.is_loopback, "a loopback address"),
    (lambda a: a.is_link_local, "a link-local address"),
    (lambda a: a.is_multicast, "a multicast address"),
    (lambda a: a.is_unspecified or a.is_reserved, "not a public address"),
    (lambda a: a in CARRIER_GRADE_NAT, "a carrier-grade NAT address"),
    (lambda a: a in UNIQUE_LOCAL, "a unique-local IPv6 address"),
    (lambda a: a.is_private, "a private address"),
    (lambda a: not a.is_global, "not a public address"),
)


def check_addresses(host: str, addresses: Iterable[str]) -> list[str]:
    """Return ``addresses`` if every one is public; else raise TargetError (without them)."""
    checked = list(addresses)
    if not checked:
        raise TargetError(f"the host {host!r} does not resolve to any address")
    for text in checked:
        why = refusal(ipaddress.ip_address(text.split("%", 1)[0]))
        if why is not None and _is_address(host):
            raise TargetError(f"{host!r} is {why}")
        if why is not None:
            # The answer goes to whoever registered the URL: the address a name resolves to
            # inside this network is not theirs to learn.
            raise TargetError(f"the host {host!r} resolves to a non-public address")
    return checked


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def parse_url(url: str, allow_private: bool) -> SplitResult:
    """Check a webhook URL's shape; return its parts or raise TargetError."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetError(f"must be at most {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise TargetError("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
        httpx.URL(url)  # the parser that will send to it must read it the same way
    except (ValueError, httpx.InvalidURL) as exc:
        raise TargetError(f"is not a valid URL ({exc})") from None
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        raise TargetError(
            "must be an https URL" if not allow_private else "must be an http or https URL"
        )
    _check_host(parts.hostname)
    if parts.username is not None or parts.password is not None:
        raise TargetError("must not carry credentials; authenticate with the signature instead")
    if parts.fragment:
        raise TargetError("must not have a fragment")
    if port == 0:
        raise TargetError("must not use port 0")
    return parts


def _check_host(hostname: str | None) -> None:
    if not hostname:
        raise TargetError("must name a host")
    if ":" not in hostname:  # a name (or IPv4 address), not an IPv6 literal
        try:
            hostname.encode("idna")
        except UnicodeError as exc:
            raise TargetError(f"has a host that is not a valid name ({exc})") from None


def default_port(parts: SplitResult) -> int:
    """Return the port a connection to ``parts`` goes to."""
    return parts.port or (443 if parts.scheme == "https" else 80)


async def check_target(url: str, resolver: Resolver, allow_private: bool) -> None:
    """Refuse a URL of the wrong shape, or whose host resolves to a non-public address."""
    parts = parse_url(url, allow_private)
    if allow_private:
        return
    host = parts.hostname
    assert host is not None
    check_addresses(host, await addresses_of(resolver, host, default_port(parts)))
