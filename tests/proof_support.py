"""Helpers for the tests of the verifiable log: a service that signs quickly, and waiting on it."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

from events.notes import Checkpoint, Verifier, signed_checkpoint
from tests.support import Tokens, client_for

INTERVAL = 0.05  # seconds between checkpoints in tests
ORIGIN = "ledger.test/log"


def proof_settings(key_dir: Path) -> dict[str, Any]:
    """Settings of a service that signs every 50 ms with a key of the test's own."""
    return {
        "checkpoint_interval_seconds": INTERVAL,
        "data_dir": key_dir,
        "log_origin": ORIGIN,
    }


@asynccontextmanager
async def signing_client(url: str, key_dir: Path, **settings: Any) -> AsyncIterator[Any]:
    """Run the app with a notary signing every 50 ms."""
    async with client_for(url, **{**proof_settings(key_dir), **settings}) as client:
        yield client


async def verifier(client: AsyncTestClient[Any]) -> Verifier:
    """Return the service's verifier key (as a monitor would pin it)."""
    answer = await client.get("/ledger/public-key")
    assert answer.status_code == 200, answer.text
    return Verifier.parse(answer.text)


async def checkpoint_at_least(
    client: AsyncTestClient[Any], tokens: Tokens, size: int, within: float = 20.0
) -> tuple[str, Checkpoint]:
    """Wait until the signed checkpoint covers ``size`` events; return its note and content."""
    key = await verifier(client)
    deadline = time.monotonic() + within
    while True:
        answer = await client.get("/ledger/checkpoint", headers=tokens.header("read"))
        if answer.status_code == 200:
            checkpoint = signed_checkpoint(answer.text, key)
            if checkpoint.size >= size:
                return answer.text, checkpoint
        assert time.monotonic() < deadline, f"no checkpoint of {size} events: {answer.text}"
        await asyncio.sleep(0.02)


def unb64(values: list[str]) -> list[bytes]:
    """Decode a proof's base64 hashes."""
    return [base64.b64decode(v) for v in values]
