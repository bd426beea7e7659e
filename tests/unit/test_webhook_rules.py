"""The webhook rules that need no database: signatures, addresses, retry timing, settings."""

from __future__ import annotations

import datetime as dt
import ipaddress
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from service.settings import DEFAULT_RETRY_SCHEDULE, Settings, parse_duration, parse_schedule
from service.webhooks.policy import retry_after_seconds, retry_delay
from service.webhooks.signing import new_secret, secret_key, signature_header
from service.webhooks.targets import TargetError, parse_url, refusal

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@given(st.text(max_size=500), st.uuids(), st.integers(min_value=0, max_value=2**32))
def test_signatures_match_the_reference_library(body: str, message: object, ts: int) -> None:
    secret = new_secret()
    ours = signature_header([secret_key(secret)], str(message), ts, body.encode())
    theirs = Webhook(secret).sign(str(message), dt.datetime.fromtimestamp(ts, dt.UTC), body)
    assert ours == theirs


def test_a_rotation_header_verifies_with_either_secret() -> None:
    old, new, other = new_secret(), new_secret(), new_secret()
    now = int(time.time())
    body = b'{"type":"company_registered"}'
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": signature_header(
            [secret_key(new), secret_key(old)], "msg_1", now, body
        ),
    }
    Webhook(old).verify(body, headers)
    Webhook(new).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("100.64.0.1", False),
        ("169.254.169.254", False),
        ("::ffff:10.0.0.1", False),
        ("fd00::1", False),
        ("240.0.0.1", False),
    ],
)
def test_only_public_addresses_pass(address: str, public: bool) -> None:
    assert (refusal(ipaddress.ip_address(address)) is None) is public


@pytest.mark.parametrize(
    ("url", "allow_private", "ok"),
    [
        ("https://hooks.example/in", False, True),
        ("http://hooks.example/in", False, False),
        ("http://localhost:8080/in", True, True),
        ("https://user@hooks.example/in", False, False),
        ("https://hooks.example/in#frag", False, False),
        ("https://hooks.example:99999/in", False, False),
        ("https:///in", False, False),
        ("javascript:alert(1)", True, False),
    ],
)
def test_url_shapes(url: str, allow_private: bool, ok: bool) -> None:
    if ok:
        parse_url(url, allow_private)
    else:
        with pytest.raises(TargetError):
            parse_url(url, allow_private)


@given(st.integers(min_value=1, max_value=len(DEFAULT_RETRY_SCHEDULE)))
def test_retries_follow_the_schedule_with_jitter(attempt: int) -> None:
    delay = retry_delay(attempt, DEFAULT_RETRY_SCHEDULE)
    assert delay is not None
    nominal = DEFAULT_RETRY_SCHEDULE[attempt - 1]
    assert 0.8 * nominal <= delay <= 1.2 * nominal


def test_the_last_attempt_is_final_and_the_default_schedule_is_the_documented_one() -> None:
    assert DEFAULT_RETRY_SCHEDULE == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert retry_delay(len(DEFAULT_RETRY_SCHEDULE) + 1, DEFAULT_RETRY_SCHEDULE) is None


def test_retry_after_waits_at_least_as_long_as_asked() -> None:
    assert retry_delay(1, (5.0,), retry_after=120.0) == 120.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("30", 30.0),
        ("Thu, 01 Jan 2026 00:01:00 GMT", 60.0),
        ("Wed, 31 Dec 2025 00:00:00 GMT", 0.0),
        ("soon", None),
        (None, None),
        ("999999999", 86400.0),
    ],
)
def test_retry_after_header(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header, NOW) == seconds


def test_settings_read_the_webhook_variables() -> None:
    settings = Settings.from_env(
        {
            "LEDGER_WEBHOOK_RETRY_SCHEDULE": "1s, 2m,3h,250ms",
            "LEDGER_WEBHOOK_ALLOW_PRIVATE": "1",
            "LEDGER_WEBHOOK_TIMEOUT": "5",
            "LEDGER_WEBHOOK_DISABLE_AFTER": "2d",
        }
    )
    assert settings.webhook_retry_schedule == (1.0, 120.0, 10800.0, 0.25)
    assert settings.webhook_allow_private and settings.webhook_timeout_seconds == 5.0
    assert settings.webhook_disable_after_seconds == 172800.0
    assert not Settings.from_env({}).webhook_allow_private


@pytest.mark.parametrize("text", ["soon", "-5s", "nan", "inf"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)
    with pytest.raises(ValueError, match="duration"):
        parse_schedule(f"5s,{text}")
