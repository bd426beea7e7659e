"""The client waits out 429 and 503 as Retry-After says, within bounds, and wraps network errors.

Against a real ``ledger serve`` (a read for a position not yet written answers 503, a token over
its rate 429), and, for the bounds, a small local HTTP server standing in for the network.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from service.client import (
    AsyncLedgerClient,
    LedgerClient,
    LedgerError,
    LedgerUnavailableError,
    ProblemError,
    RetryPolicy,
)
from tests import factories
from tests.support import ServerProcess, free_port, make_tokens, unique_id, wait_for


def _logged(caplog: pytest.LogCaptureFixture, status: int) -> bool:
    return any(f"answered {status};" in r.getMessage() for r in caplog.records)


async def test_the_async_client_waits_out_a_503_until_its_read_is_possible(
    db_url: str,
    ledger_processes: Callable[..., ServerProcess],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = ledger_processes(db_url)
    server.start()
    tokens = await make_tokens(db_url)
    company = unique_id()
    caplog.set_level(logging.INFO, logger="service.client")
    async with AsyncLedgerClient(server.base_url, tokens.all) as ledger:
        first = await ledger.append(factories.company_registered(company))
        # given a read of a position not yet written: 503 with Retry-After
        reading = asyncio.create_task(ledger.company(company, min_position=first.position + 1))

        async def refused_once() -> bool:
            return _logged(caplog, 503)

        await wait_for(refused_once)
        # when another writer appends it meanwhile
        await ledger.append(factories.valuation_reported(company, value="1000000000.5"))
        # then the read, sent again after Retry-After, includes it
        state = await reading
    assert state.valuation is not None and state.valuation.value == Decimal("1000000000.5")
    assert state.position == first.position + 1


async def test_a_token_over_its_rate_is_sent_again_after_retry_after(
    db_url: str,
    ledger_processes: Callable[..., ServerProcess],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = ledger_processes(db_url, LEDGER_RATE_LIMIT="1", LEDGER_RATE_BURST="1")
    server.start()
    tokens = await make_tokens(db_url)
    caplog.set_level(logging.INFO, logger="service.client")
    # given three reads at once from a token allowed one a second
    async with AsyncLedgerClient(server.base_url, tokens.all) as ledger:
        pages = await asyncio.gather(*(ledger.events() for _ in range(3)))
    # then each waited its turn: 429s, sent again, all answered
    assert [p.events for p in pages] == [[], [], []] and _logged(caplog, 429)
    # and with no retries allowed, the 429 is raised with the wait it asked for
    impatient = RetryPolicy(attempts=1)
    with (
        LedgerClient(server.base_url, tokens.all, retry=impatient) as ledger,
        pytest.raises(ProblemError) as refused,
    ):
        for _ in range(3):
            ledger.events()
    assert refused.value.status == 429 and (refused.value.retry_after or 0) >= 1


@contextmanager
def _stand_in(status: int, retry_after: str) -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server answering every request with ``status`` and ``Retry-After``."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            body = b'{"status":%d,"title":"Service overloaded","detail":"retry shortly"}' % status
            self.send_response(status)
            self.send_header("Retry-After", retry_after)
            self.send_header("Content-Type", "application/problem+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_retries_stop_after_the_attempts_allowed() -> None:
    with (
        _stand_in(503, "0") as (url, seen),
        LedgerClient(url, "t", retry=RetryPolicy(attempts=3)) as ledger,
        pytest.raises(ProblemError) as refused,
    ):
        ledger.digest()
    assert len(seen) == 3
    assert refused.value.status == 503 and refused.value.detail == "retry shortly"


async def test_a_wait_beyond_max_wait_is_not_begun() -> None:
    with _stand_in(503, "60") as (url, seen):
        async with AsyncLedgerClient(url, "t", retry=RetryPolicy(max_wait=30)) as ledger:
            with pytest.raises(ProblemError) as refused:
                await ledger.digest()
    assert len(seen) == 1 and refused.value.retry_after == 60


async def test_network_errors_are_the_clients_own() -> None:
    # given nothing listening, and a listener that never answers
    closed = f"http://127.0.0.1:{free_port()}"
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        mute = f"http://127.0.0.1:{silent.getsockname()[1]}"
        # then each failure is a LedgerUnavailableError naming the request
        with LedgerClient(closed, "t") as ledger, pytest.raises(LedgerUnavailableError) as sync:
            ledger.company("zhipu-ai")
        async with AsyncLedgerClient(mute, "t", timeout=0.2) as patient:
            with pytest.raises(LedgerError) as timed_out:
                await patient.events()
    assert "GET /companies/zhipu-ai: ConnectError" in str(sync.value)
    assert isinstance(timed_out.value, LedgerUnavailableError)
    assert "ReadTimeout" in str(timed_out.value)
