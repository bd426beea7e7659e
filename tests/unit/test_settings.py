"""Every setting is checked when it is read, and a refusal names its variable."""

from __future__ import annotations

import pytest

from service.settings import VARIABLES, Settings, SettingsError

# Free text, or a flag: any value is one.
FREE = {
    "DATABASE_URL",
    "LEDGER_DATA_DIR",
    "LEDGER_HOST",
    "LEDGER_WEBHOOK_ALLOW_PRIVATE",
    "LEDGER_SIGNING_KEY_FILE",
    "LEDGER_LOG_ORIGIN",
}


@pytest.mark.parametrize("variable", sorted({v for v, _ in VARIABLES.values()} - FREE))
def test_a_value_that_cannot_work_is_refused_naming_its_variable(variable: str) -> None:
    for nonsense in ("abc", "-1", "nan", "1e400"):
        with pytest.raises(SettingsError) as refused:
            Settings.from_env({variable: nonsense})
        assert str(refused.value).startswith(variable), refused.value
        assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LEDGER_PORT", "abc"),
        ("LEDGER_PORT", "0"),
        ("LEDGER_PORT", "65536"),
        ("LEDGER_POOL_SIZE", "2"),
        ("LEDGER_REQUEST_TIMEOUT", "0"),
        ("LEDGER_REQUEST_TIMEOUT", "soon"),
        ("LEDGER_RATE_LIMIT", "nan"),
        ("LEDGER_RATE_LIMIT", "-1"),
        ("LEDGER_APPEND_QUEUE_LIMIT", "0"),
        ("LEDGER_LOG_LEVEL", "loud"),
        ("LEDGER_WEBHOOK_RETRY_SCHEDULE", "5s,later"),
        ("LEDGER_CHECKPOINT_INTERVAL", "0"),
        ("LEDGER_LOG_ORIGIN", "two words"),
        ("LEDGER_LOG_ORIGIN", "a+b"),
    ],
)
def test_values_out_of_range_are_refused(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"^{variable}"):
        Settings.from_env({variable: value})


def test_every_port_from_1_to_65535_is_taken() -> None:
    assert Settings.from_env({"LEDGER_PORT": "1"}).port == 1
    assert Settings.from_env({"LEDGER_PORT": "65535"}).port == 65535


def test_the_defaults_are_what_no_variable_gives() -> None:
    assert Settings.from_env({}) == Settings()
    assert Settings.from_env({"LEDGER_REQUEST_TIMEOUT": "2m"}).request_timeout_seconds == 120.0
    assert Settings.from_env({"DATABASE_URL": ""}).database_url is None
    assert Settings.from_env({"LEDGER_LOG_ORIGIN": ""}).log_origin is None
    assert Settings.from_env({"LEDGER_SIGNING_KEY_FILE": ""}).signing_key_file is None


def test_the_notary_is_switched_on_or_off_and_nothing_else() -> None:
    assert not Settings.from_env({"LEDGER_NOTARY": "off"}).notary
    assert Settings.from_env({"LEDGER_NOTARY": "on"}).notary
    with pytest.raises(SettingsError, match=r"^LEDGER_NOTARY"):
        Settings.from_env({"LEDGER_NOTARY": "sometimes"})
