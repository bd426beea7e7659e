"""Webhook targets that must be refused, at registration and again when a message is sent.

A resolver that answers from a table stands in for DNS, so that a host can resolve to a public
address when it is registered and to a forbidden one when a message is sent (DNS rebinding).
The service runs without ``LEDGER_WEBHOOK_ALLOW_PRIVATE``, as in production.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest

from tests import factories
from tests.support import client_for, make_tokens, unique_id, wait_for

PUBLIC = "93.184.216.34"

# Each class of forbidden address, with what the refusal calls it.
FORBIDDEN = [
    ("127.0.0.1", "loopback"),
    ("::1", "loopback"),
    ("::ffff:127.0.0.1", "loopback"),
    ("2002:7f00:1::", "loopback"),  # 6to4 for 127.0.0.1
    ("2002:a00:1::", "private"),  # 6to4 for 10.0.0.1
    ("fec0::1", "site-local"),
    ("10.1.2.3", "private"),
    ("172.16.5.4", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("169.254.10.10", "link-local"),
    ("fe80::1", "link-local"),
    ("fd12:3456::1", "unique-local"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("169.254.169.254", "metadata"),
    ("fd00:ec2::254", "metadata"),
    ("100.100.100.200", "metadata"),
    ("0.0.0.0", "not a public address"),  # noqa: S104 (a target, not a bind)
]


class Listener:
    """A TCP port on 127.0.0.1 that counts the connections made to it."""

    def __init__(self) -> None:
        self.accepted = 0
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.1)
        self.port = self._socket.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            conn.close()

    def __enter__(self) -> Listener:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()


class TableResolver:
    """Answers from a table a test can change between two lookups."""

    def __init__(self) -> None:
        self.table: dict[str, list[str]] = {}

    async def resolve(self, host: str, port: int) -> list[str]:
        return list(self.table.get(host, []))


@pytest.mark.parametrize(("address", "kind"), FORBIDDEN)
async def test_registration_refuses_each_class(db_url: str, address: str, kind: str) -> None:
    resolver = TableResolver()
    # one public address is not enough: any forbidden one refuses the host
    resolver.table["hooks.example"] = [PUBLIC, address]
    tokens = await make_tokens(db_url)
    async with client_for(db_url, resolver) as client:
        by_name = await client.post(
            "/webhooks", json={"url": "https://hooks.example/in"}, headers=tokens.header()
        )
        literal = address if ":" not in address else f"[{address}]"
        by_address = await client.post(
            "/webhooks", json={"url": f"https://{literal}/in"}, headers=tokens.header()
        )
        listed = (await client.get("/webhooks", headers=tokens.header())).json()["webhooks"]
    for answer in (by_name, by_address):
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
    [by_address_error] = by_address.json()["errors"]
    assert by_address_error["field"] == "url" and kind in by_address_error["message"]
    [by_name_error] = by_name.json()["errors"]
    assert by_name_error["field"] == "url" and "non-public address" in by_name_error["message"]
    assert address not in by_name.text
    assert listed == []


async def test_registration_checks_scheme_and_resolution(db_url: str) -> None:
    resolver = TableResolver()
    resolver.table["hooks.example"] = [PUBLIC]
    tokens = await make_tokens(db_url)
    async with client_for(db_url, resolver) as client:

        async def register(url: str) -> Any:
            return await client.post("/webhooks", json={"url": url}, headers=tokens.header())

        plain = await register("http://hooks.example/in")
        unknown = await register("https://nowhere.example/in")
        accepted = await register("https://hooks.example/in")
    assert plain.status_code == 422 and "https" in plain.json()["errors"][0]["message"]
    assert unknown.status_code == 422 and "resolve" in unknown.json()["errors"][0]["message"]
    assert accepted.status_code == 201


async def test_sends_are_refused_when_a_host_rebinds(db_url: str) -> None:
    resolver = TableResolver()
    tokens = await make_tokens(db_url)
    settings = {"webhook_retry_schedule": (60.0,), "webhook_timeout_seconds": 2.0}
    with Listener() as listener:
        port = listener.port
        async with client_for(db_url, resolver, **settings) as client:
            endpoints: dict[str, str] = {}
            for i, (address, _kind) in enumerate(FORBIDDEN):
                host = f"rebind-{i}.example"
                resolver.table[host] = [PUBLIC]
                created = await client.post(
                    "/webhooks",
                    json={"url": f"https://{host}:{port}/hook"},
                    headers=tokens.header(),
                )
                assert created.status_code == 201, created.text
                endpoints[created.json()["id"]] = address
                resolver.table[host] = [address]  # the name now points somewhere forbidden
            await client.post(
                "/events",
                json=factories.company_registered(unique_id()),
                headers=tokens.header(),
            )

            async def every_attempt_made() -> bool:
                for endpoint_id in endpoints:
                    page = await client.get(
                        f"/webhooks/{endpoint_id}/deliveries", headers=tokens.header()
                    )
                    deliveries = page.json()["deliveries"]
                    if not deliveries or not deliveries[0]["attempt_log"]:
                        return False
                return True

            await wait_for(every_attempt_made, within=20)
            for endpoint_id, address in endpoints.items():
                page = await client.get(
                    f"/webhooks/{endpoint_id}/deliveries", headers=tokens.header()
                )
                [attempt] = page.json()["deliveries"][0]["attempt_log"]
                assert not attempt["succeeded"] and attempt["response_code"] is None
                assert attempt["error"].startswith("refused:")
                assert "non-public address" in attempt["error"] and address not in page.text
    assert listener.accepted == 0  # nothing even connected to the loopback port
