"""The Python client against a running ``ledger serve``, and its webhook verifier."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from service.client import LedgerClient, ProblemError, WebhookVerificationError, verify_webhook
from service.webhooks.signing import new_secret
from tests import factories
from tests.receiver import Receiver
from tests.support import ServerProcess, make_tokens, unique_id, wait_for


@pytest.fixture
def server(db_url: str, ledger_processes: Callable[..., ServerProcess]) -> Any:
    process = ledger_processes(db_url, LEDGER_WEBHOOK_ALLOW_PRIVATE="1")
    process.start()
    yield process
    process.terminate()


async def test_the_client_appends_reads_and_asks(db_url: str, server: ServerProcess) -> None:
    tokens = await make_tokens(db_url)
    company = unique_id()

    def session() -> dict[str, Any]:
        with LedgerClient(server.base_url, tokens.all) as ledger:
            registered = ledger.append(factories.company_registered(company))
            receipts = ledger.append_batch(
                [
                    factories.valuation_reported(
                        company, value="500000000", effective_date="2023-07-01"
                    ),
                    factories.valuation_reported(
                        company, value="1000000000", effective_date="2023-09-15"
                    ),
                    factories.round_announced(company),
                ]
            )
            # a second source, one against one: the more recently published figure stands
            published = {"name": "Report 001", "published_at": "2023-10-21T08:00:00Z"}
            other = factories.round_announced(company, source=published)
            other["data"] = {**other["data"], "amount_usd": "341000000"}
            ledger.append(other)
            before = ledger.company(company, as_of="2023-09-14", min_position=receipts[-1].position)
            after = ledger.company(company, as_of=dt.date(2023, 9, 15))
            then = ledger.company(company, as_of="2023-12-01", known_at=registered.recorded_at)
            events = list(ledger.iter_events(types=["valuation_reported"]))
            with pytest.raises(ProblemError) as refused:
                ledger.append({"type": "company_registered"})
            with pytest.raises(ProblemError) as missing:
                ledger.company("no-such-company")
            return {
                "registered": registered,
                "receipts": receipts,
                "before": before,
                "after": after,
                "then": then,
                "events": events,
                "valuations": ledger.valuations(company),
                "portfolio": ledger.portfolio("alibaba", min_position=receipts[-1].position),
                "rules": ledger.export_rules(as_of="2023-12-01"),
                "digest": ledger.digest(),
                "now": ledger.company(company),
                "disputes": ledger.disputes(company, as_of="2023-12-01"),
                "sources": ledger.sources(name="report 001"),
                "refused": refused.value,
                "missing": missing.value,
            }

    got = await asyncio.to_thread(session)
    assert got["registered"].position == 1 and len(got["receipts"]) == 3
    assert got["before"].valuation.value == Decimal("500000000")
    assert got["after"].valuation.value == Decimal("1000000000")
    assert got["after"].known_at.tzinfo is not None and got["after"].as_of == dt.date(2023, 9, 15)
    assert got["registered"].recorded_at == got["then"].known_at
    assert got["then"].valuation is None and got["then"].name == "Zhipu AI"
    assert [e.data["valuation"]["value"] for e in got["events"]] == ["500000000", "1000000000"]
    assert [v.value for v in got["valuations"]] == [Decimal("500000000"), Decimal("1000000000")]
    assert [h.company_id for h in got["portfolio"].companies] == [company]
    assert got["rules"].rules == []
    assert got["digest"].position == 5
    [round_] = got["now"].rounds
    assert [s.name for s in round_.sources] == ["South China Morning Post", "Report 001"]
    assert got["now"].total_raised_usd == Decimal("341000000")
    [fact] = got["disputes"].facts
    assert fact.fields[0].alternatives[0].value == "342000000"
    assert [(s.name, s.reports) for s in got["sources"].sources] == [("Report 001", 1)]
    assert got["refused"].status == 400 and got["refused"].errors[0].field
    assert got["missing"].status == 404


async def test_the_webhook_helper_verifies_real_deliveries(
    db_url: str, server: ServerProcess
) -> None:
    tokens = await make_tokens(db_url)
    with Receiver().running() as receiver:

        def subscribe_and_append() -> tuple[str, str]:
            import httpx

            created = httpx.post(
                f"{server.base_url}/webhooks",
                json={"url": receiver.url},
                headers=tokens.header(),
            ).json()
            with LedgerClient(server.base_url, tokens.all) as ledger:
                receipt = ledger.append(factories.company_registered(unique_id()))
            return created["secret"], str(receipt.event_id)

        secret, event_id = await asyncio.to_thread(subscribe_and_append)

        async def arrived() -> bool:
            return len(receiver.snapshot()) >= 1

        await wait_for(arrived)
        request = receiver.snapshot()[0]
    message = verify_webhook(secret, request.body, request.headers)
    assert str(message.data.event_id) == event_id and message.type == "company_registered"
    with pytest.raises(WebhookVerificationError):
        verify_webhook(new_secret(), request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, request.body.replace(b"Zhipu", b"Zhipx"), request.headers)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, request.body, request.headers, now=time.time() + 3600)


def _readme_example() -> str:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## A Python client", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_example_passes_mypy_strict(tmp_path: Path) -> None:
    # given the README's example as a module of its own
    example = tmp_path / "example.py"
    example.write_text(_readme_example())
    root = Path(__file__).parents[2]
    # when mypy checks it strictly
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), "."],
        cwd=tmp_path,
        env={**os.environ, "MYPYPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    # then it is clean
    assert checked.returncode == 0, checked.stdout + checked.stderr


async def test_the_readme_example_runs_against_the_demo(demo: str) -> None:
    code = _readme_example().replace("http://127.0.0.1:8000", demo)
    printed: list[str] = []

    def run() -> None:
        exec(  # noqa: S102 (the README's own example, run as a reader would)
            compile(code, "README.md", "exec"),
            {"print": lambda *a: printed.append(" ".join(map(str, a))), "__name__": "example"},
        )

    await asyncio.to_thread(run)
    assert printed[0] == "1000000000 USD"
    assert printed[1].startswith("us-advanced-ai-chips amended 2023-10-16")
    assert printed[-3].startswith("404 ") and "zhipu-ai" in printed[-3]
    assert printed[-2] == "2500000000"
    assert printed[-1].startswith("{'zhipu-ai': Decimal('2500000000'), 'baichuan': ")
