"""The stream cache's byte bound is read from the environment and checked."""

from __future__ import annotations

import pytest

from service.settings import Settings


def test_the_cache_bound_in_bytes_comes_from_the_environment() -> None:
    settings = Settings.from_env({"LEDGER_STREAM_CACHE_BYTES": "1048576"})
    assert settings.stream_cache_bytes == 1024 * 1024
    assert Settings.from_env({}).stream_cache_bytes == 512 * 1024 * 1024


def test_a_negative_cache_bound_is_refused_naming_the_variable() -> None:
    with pytest.raises(ValueError, match="LEDGER_STREAM_CACHE_BYTES"):
        Settings.from_env({"LEDGER_STREAM_CACHE_BYTES": "-1"})
