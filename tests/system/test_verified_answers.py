"""The client's verified answers: honest ones pass, any alteration in transit is refused."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.client import LedgerClient
from service.verified import VerificationError
from tests import factories
from tests.support import ServerProcess, Tokens, unique_id
from tests.system.test_silent_rewrite import ORIGIN, get

Tamper = Callable[[dict[str, Any]], None]


@pytest.fixture
def server(db_url: str, tmp_path: Path, artifacts: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(
        db_url,
        artifacts / "verified-answers.log",
        env={
            "LEDGER_DATA_DIR": str(tmp_path / "data"),
            "LEDGER_LOG_ORIGIN": ORIGIN,
            "LEDGER_CHECKPOINT_INTERVAL": "0.05",
        },
    )
    process.start()
    yield process
    if process.process is not None and process.process.poll() is None:
        process.kill()


def _ledger(server: ServerProcess, tokens: Tokens) -> tuple[str, str]:
    """Append a company with a valuation, a round and a corrected valuation, and a rule."""
    company = unique_id()
    with httpx.Client(base_url=server.base_url, headers=tokens.header("write")) as http:
        for envelope in [
            factories.company_registered(company),
            factories.round_announced(company),
            factories.export_rule(unique_id("rule")),
        ]:
            http.post("/events", json=envelope).raise_for_status()
        valuation = factories.valuation_reported(company, value="2000000000")
        http.post("/events", json=valuation).raise_for_status()
        fixed = {**valuation["data"], "valuation": {"value": "2100000000", "currency": "USD"}}
        head = http.post("/events", json=factories.corrected(valuation["event_id"], fixed)).json()
    deadline = time.monotonic() + 20
    while True:
        answer = get(f"{server.base_url}/ledger/checkpoint", tokens.header("read"))
        if answer.status_code == 200 and int(answer.text.split("\n")[1]) >= head["position"]:
            return company, get(f"{server.base_url}/ledger/public-key").text.strip()
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.02)


def _tampering(base: str, tamper: Tamper) -> httpx.BaseTransport:
    """A transport that alters every verified answer before the client sees it."""
    real = httpx.HTTPTransport()

    def handle(request: httpx.Request) -> httpx.Response:
        response = real.handle_request(request)
        response.read()
        if b"proof=true" not in request.url.query:
            return response
        body = json.loads(response.content)
        tamper(body)
        return httpx.Response(response.status_code, json=body)

    return httpx.MockTransport(handle)


def _flip(text: str) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[0] ^= 1
    return base64.b64encode(bytes(raw)).decode()


def _value(body: dict[str, Any]) -> None:
    body["valuation"]["value"] = "9999999999"


def _source(body: dict[str, Any]) -> None:
    body["sources"][0]["name"] = "someone else"


def _dropped_event(body: dict[str, Any]) -> None:
    del body["proof"]["events"][-1], body["proof"]["inclusion"][-1]


def _proof(body: dict[str, Any]) -> None:
    inclusion = body["proof"]["inclusion"][0]
    inclusion["hashes"][0] = _flip(inclusion["hashes"][0])


def _event(body: dict[str, Any]) -> None:
    body["proof"]["events"][1]["effective_date"] = "2001-01-01"


def _signature(body: dict[str, Any]) -> None:
    note = body["proof"]["checkpoint"]
    head, _, signature = note.rstrip("\n").rpartition(" ")
    body["proof"]["checkpoint"] = f"{head} {_flip(signature)}\n"


def test_honest_verified_answers_pass(server: ServerProcess, tokens: Tokens) -> None:
    company, key = _ledger(server, tokens)
    with LedgerClient(server.base_url, tokens.read, key=key) as ledger:
        state = ledger.company(company, verified=True)
        assert state.valuation is not None and state.valuation.value == Decimal("2100000000")
        assert state.sources, "the reports behind the company are confirmed too"
        assert [v.value for v in ledger.valuations(company, verified=True)] == [
            Decimal("2100000000")
        ]
        holdings = ledger.portfolio("alibaba", verified=True).companies
        assert company in [h.company_id for h in holdings]
        assert ledger.export_rules(target_jurisdiction="CN", verified=True).rules
    url = f"{server.base_url}/companies/{company}?proof=true"
    proven = get(url, tokens.header("read")).json()["proof"]["events"]
    assert any(e["stream"].startswith("export-rule:") for e in proven)  # folded in too


@pytest.mark.parametrize("tamper", [_value, _source, _dropped_event, _proof, _event, _signature])
def test_an_altered_verified_answer_is_refused(
    server: ServerProcess, tokens: Tokens, tamper: Tamper
) -> None:
    company, key = _ledger(server, tokens)
    transport = _tampering(server.base_url, tamper)
    with (
        LedgerClient(server.base_url, tokens.read, key=key, transport=transport) as ledger,
        pytest.raises(VerificationError),
    ):
        ledger.company(company, verified=True)


def test_another_key_is_refused(server: ServerProcess, tokens: Tokens) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from events.notes import vkey

    company, _ = _ledger(server, tokens)
    other = vkey(ORIGIN, Ed25519PrivateKey.generate())
    with (
        LedgerClient(server.base_url, tokens.read, key=other) as ledger,
        pytest.raises(VerificationError, match="checkpoint"),
    ):
        ledger.company(company, verified=True)
