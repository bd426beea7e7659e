"""The time limits on reading a request are read from the environment and checked."""

from __future__ import annotations

import pytest

from service.settings import Settings


def test_reading_limits_default_to_10_and_30_seconds() -> None:
    settings = Settings.from_env({})
    assert (settings.header_timeout_seconds, settings.body_timeout_seconds) == (10.0, 30.0)


def test_reading_limits_take_durations() -> None:
    settings = Settings.from_env({"LEDGER_HEADER_TIMEOUT": "500ms", "LEDGER_BODY_TIMEOUT": "2m"})
    assert (settings.header_timeout_seconds, settings.body_timeout_seconds) == (0.5, 120.0)


@pytest.mark.parametrize("name", ["LEDGER_HEADER_TIMEOUT", "LEDGER_BODY_TIMEOUT"])
@pytest.mark.parametrize(("value", "complaint"), [("0", "positive"), ("soon", "duration")])
def test_unusable_reading_limits_are_refused(name: str, value: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        Settings.from_env({name: value})
