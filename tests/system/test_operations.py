"""Operations: metrics after traffic, request ids, JSON logs that hold no secret."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx

from tests import factories
from tests.receiver import Receiver
from tests.support import ServerProcess, make_tokens, unique_id, wait_for


def metric(text: str, name: str, **labels: str) -> float:
    """Return the value of one sample of a Prometheus text exposition (0 if absent)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        series, _, value = line.rpartition(" ")
        if series.split("{")[0] != name:
            continue
        if all(f'{k}="{v}"' in series for k, v in labels.items()):
            return float(value)
    return 0.0


async def test_metrics_logs_and_request_ids_after_traffic(
    db_url: str, ledger_processes: Callable[..., ServerProcess]
) -> None:
    tokens = await make_tokens(db_url)
    server = ledger_processes(db_url, LEDGER_LOG_LEVEL="info", LEDGER_WEBHOOK_ALLOW_PRIVATE="1")
    log_path = server.log_path
    server.start()
    try:
        with Receiver().running() as receiver:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
                hook = await http.post(
                    "/webhooks", json={"url": receiver.url}, headers=tokens.header()
                )
                secret = hook.json()["secret"]
                company = unique_id()
                batch = {
                    "events": [
                        factories.company_registered(company),
                        factories.valuation_reported(company),
                    ]
                }
                appended = await http.post(
                    "/events", json=batch, headers={**tokens.header(), "X-Request-ID": "req-42"}
                )
                assert appended.status_code == 201
                assert appended.headers["x-request-id"] == "req-42"
                again = await http.post("/events", json=batch, headers=tokens.header())
                assert again.status_code == 200  # an idempotent retry
                generated = again.headers["x-request-id"]
                assert len(generated) == 32
                bad = await http.post("/events", json={"type": "nope"}, headers=tokens.header())
                assert bad.status_code == 400 and bad.headers["x-request-id"]
                hostile = await http.get("/health", headers={"X-Request-ID": "a b;c" * 50})
                assert len(hostile.headers["x-request-id"]) == 32  # refused, replaced
                answer = await http.get(f"/companies/{company}", headers=tokens.header())
                assert answer.status_code == 200
                await wait_for(lambda: _arrived(receiver, 2))

                async def delivered() -> bool:
                    text = (await http.get("/metrics")).text
                    return metric(text, "ledger_webhook_deliveries_total", outcome="succeeded") == 2

                await wait_for(delivered)
                text = (await http.get("/metrics")).text
    finally:
        server.terminate()

    assert metric(text, "ledger_appends_total", outcome="appended") == 1
    assert metric(text, "ledger_appends_total", outcome="replayed") == 1
    assert metric(text, "ledger_appends_total", outcome="refused") == 1
    assert metric(text, "ledger_events_appended_total") == 2
    assert metric(text, "ledger_append_batch_events_count") == 2
    assert metric(text, "ledger_append_seconds_count") == 2
    assert metric(text, "ledger_head_position") == 2
    assert metric(text, "ledger_projector_lag_events") == 0
    assert metric(text, "ledger_webhook_lag_events") == 0
    assert metric(text, "ledger_webhook_attempt_seconds_count") == 2
    assert (
        metric(
            text,
            "ledger_http_requests_total",
            path="/companies/{company_id}",
            status_code="200",
        )
        == 1
    )

    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    requests = [line for line in lines if line["logger"] == "ledger.access"]
    assert any(r["request_id"] == "req-42" and r["status"] == 201 for r in requests)
    assert any(r["request_id"] == generated and r["status"] == 200 for r in requests)
    everything = log_path.read_text()
    for secret_text in (tokens.all, tokens.write, secret, secret.removeprefix("whsec_")):
        assert secret_text not in everything
    assert "Bearer" not in everything


async def _arrived(receiver: Receiver, n: int) -> bool:
    return len(receiver.snapshot()) >= n
