"""Settings, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from msgspec import Struct

MIN_POOL_SIZE = 3
DEFAULT_RETRY_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_duration(text: str) -> float:
    """Parse ``5s``, ``30m``, ``2h``, ``1d``, ``250ms`` or plain seconds into seconds."""
    text = text.strip().lower()
    for unit in ("ms", "s", "m", "h", "d"):
        if text.endswith(unit) and text[: -len(unit)].strip():
            number, factor = text[: -len(unit)], _UNITS[unit]
            break
    else:
        number, factor = text, 1.0
    try:
        seconds = float(number) * factor
    except ValueError:
        raise ValueError(f"{text!r} is not a duration such as 5s, 30m or 2h") from None
    if not seconds >= 0 or seconds == float("inf"):
        raise ValueError(f"{text!r} is not a finite, non-negative duration")
    return seconds


def parse_schedule(text: str) -> tuple[float, ...]:
    """Parse a comma-separated retry schedule, such as ``5s,5m,30m``."""
    return tuple(parse_duration(part) for part in text.split(",") if part.strip())


class Settings(Struct, frozen=True, kw_only=True):
    """Everything the service can be configured with; see the README for each variable."""

    database_url: str | None = None
    data_dir: Path = Path("ledger-data")
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 1024 * 1024
    pool_size: int = 10
    append_queue_limit: int = 10_000
    request_timeout_seconds: float = 10.0
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    log_level: str = "info"
    log_format: str = "json"
    max_concurrent_requests: int = 1000
    rate_limit: float = 0.0  # requests per second per token; 0: no limit
    rate_burst: int = 100
    stream_cache_events: int = 1_000_000
    stream_cache_bytes: int = 512 * 1024 * 1024
    webhook_allow_private: bool = False
    webhook_retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    webhook_timeout_seconds: float = 15.0
    webhook_concurrency: int = 64
    webhook_max_in_flight_per_endpoint: int = 16
    webhook_disable_after_seconds: float = 5 * 86400.0
    max_subscribers: int = 1000
    subscriber_buffer_events: int = 10_000
    subscription_heartbeat_seconds: float = 15.0
    read_replica_urls: tuple[str, ...] = ()
    replica_max_lag_seconds: float = 5.0
    signing_key_file: Path | None = None
    log_origin: str | None = None
    checkpoint_interval_seconds: float = 1.0
    tree_cache_bytes: int = 128 * 1024 * 1024  # the tree's nodes held for proofs (64 B a leaf)
    notary: bool = True  # build the tree and sign checkpoints in this process (one at a time)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default: the environment), or raise SettingsError."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for field, (variable, read) in VARIABLES.items():
            if variable not in env:
                continue
            try:
                values[field] = read(env[variable])
            except ValueError as exc:
                rule = next((f"; it must be {r}" for f, _, r in _RULES if f == field), "")
                raise SettingsError(f"{variable}: {exc}{rule}") from None
        return cls(**values).checked()

    def checked(self) -> Settings:
        """Return these settings, or raise SettingsError naming the one that cannot work."""
        for field, holds, rule in _RULES:
            value = getattr(self, field)
            if not holds(value):
                shown = f"{value:g}" if isinstance(value, float) else value
                raise SettingsError(f"{VARIABLES[field][0]} must be {rule}, not {shown}")
        return self


class SettingsError(ValueError):
    """A setting that cannot work; its message names the variable and what it accepts."""


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


def _urls(text: str) -> tuple[str, ...]:
    """Parse a comma-separated list of PostgreSQL URLs."""
    urls = tuple(url.strip() for url in text.split(",") if url.strip())
    for url in urls:
        if not url.startswith(("postgresql://", "postgres://")):
            raise ValueError(f"{url!r} is not a postgresql:// URL")
    return urls


def _switch(text: str) -> bool:
    """Parse on/off (also 1/0, true/false, yes/no)."""
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"{text!r} is neither on nor off")


def _origin(text: str) -> str | None:
    """Parse a log's origin: it also names the signing key, so no spaces and no '+'."""
    if not text:
        return None
    if "+" in text or any(c.isspace() for c in text):
        raise ValueError(f"{text!r} cannot name a log: it must have no spaces and no '+'")
    return text


def _number(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):  # NaN, infinities
        raise ValueError(f"{text!r} is not a finite number")
    return number


# Each setting read from the environment: its variable, and how its text is read.
VARIABLES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "database_url": ("DATABASE_URL", lambda text: text or None),
    "data_dir": ("LEDGER_DATA_DIR", Path),
    "host": ("LEDGER_HOST", str),
    "port": ("LEDGER_PORT", _whole),
    "max_body_bytes": ("LEDGER_MAX_BODY_BYTES", _whole),
    "pool_size": ("LEDGER_POOL_SIZE", _whole),
    "append_queue_limit": ("LEDGER_APPEND_QUEUE_LIMIT", _whole),
    "request_timeout_seconds": ("LEDGER_REQUEST_TIMEOUT", parse_duration),
    "header_timeout_seconds": ("LEDGER_HEADER_TIMEOUT", parse_duration),
    "body_timeout_seconds": ("LEDGER_BODY_TIMEOUT", parse_duration),
    "log_level": ("LEDGER_LOG_LEVEL", str.lower),
    "log_format": ("LEDGER_LOG_FORMAT", str),
    "max_concurrent_requests": ("LEDGER_MAX_CONCURRENT_REQUESTS", _whole),
    "rate_limit": ("LEDGER_RATE_LIMIT", _number),
    "rate_burst": ("LEDGER_RATE_BURST", _whole),
    "stream_cache_events": ("LEDGER_STREAM_CACHE_EVENTS", _whole),
    "stream_cache_bytes": ("LEDGER_STREAM_CACHE_BYTES", _whole),
    "webhook_allow_private": ("LEDGER_WEBHOOK_ALLOW_PRIVATE", lambda text: text.lower() in _TRUE),
    "webhook_retry_schedule": ("LEDGER_WEBHOOK_RETRY_SCHEDULE", parse_schedule),
    "webhook_timeout_seconds": ("LEDGER_WEBHOOK_TIMEOUT", parse_duration),
    "webhook_concurrency": ("LEDGER_WEBHOOK_CONCURRENCY", _whole),
    "webhook_max_in_flight_per_endpoint": ("LEDGER_WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT", _whole),
    "webhook_disable_after_seconds": ("LEDGER_WEBHOOK_DISABLE_AFTER", parse_duration),
    "max_subscribers": ("LEDGER_MAX_SUBSCRIBERS", _whole),
    "subscriber_buffer_events": ("LEDGER_SUBSCRIBER_BUFFER", _whole),
    "subscription_heartbeat_seconds": ("LEDGER_SUBSCRIPTION_HEARTBEAT", parse_duration),
    "read_replica_urls": ("LEDGER_READ_REPLICA_URLS", _urls),
    "replica_max_lag_seconds": ("LEDGER_REPLICA_MAX_LAG", parse_duration),
    "signing_key_file": ("LEDGER_SIGNING_KEY_FILE", lambda text: Path(text) if text else None),
    "log_origin": ("LEDGER_LOG_ORIGIN", _origin),
    "checkpoint_interval_seconds": ("LEDGER_CHECKPOINT_INTERVAL", parse_duration),
    "tree_cache_bytes": ("LEDGER_TREE_CACHE_BYTES", _whole),
    "notary": ("LEDGER_NOTARY", _switch),
}

_LOG_LEVELS = ("critical", "error", "warning", "info", "debug")

# What each setting must hold to work: the field, the test, and the rule told when it fails.
_RULES: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("port", lambda port: 1 <= port <= 65535, "a port from 1 to 65535"),
    (
        "pool_size",
        lambda size: size >= MIN_POOL_SIZE,
        f"at least {MIN_POOL_SIZE} (the append task holds two connections, reads need one)",
    ),
    ("max_body_bytes", lambda size: size >= 1024, "at least 1024"),
    ("append_queue_limit", lambda limit: limit >= 1, "at least 1"),
    ("request_timeout_seconds", lambda seconds: seconds > 0, "a positive duration"),
    ("header_timeout_seconds", lambda seconds: seconds > 0, "a positive duration"),
    ("body_timeout_seconds", lambda seconds: seconds > 0, "a positive duration"),
    ("log_level", lambda level: level in _LOG_LEVELS, "one of " + ", ".join(_LOG_LEVELS)),
    ("log_format", lambda form: form in ("json", "text"), "json or text"),
    ("max_concurrent_requests", lambda count: count >= 1, "at least 1"),
    ("rate_limit", lambda rate: rate >= 0, "0 (no limit) or more"),
    ("rate_burst", lambda burst: burst >= 1, "at least 1"),
    ("stream_cache_events", lambda count: count >= 0, "0 (no cache) or more"),
    ("stream_cache_bytes", lambda size: size >= 0, "0 (no cache) or more"),
    ("tree_cache_bytes", lambda size: size >= 0, "0 (no cache) or more"),
    ("webhook_timeout_seconds", lambda seconds: seconds > 0, "a positive duration"),
    ("webhook_concurrency", lambda count: count >= 1, "at least 1"),
    ("webhook_max_in_flight_per_endpoint", lambda count: count >= 1, "at least 1"),
    ("max_subscribers", lambda count: count >= 0, "0 (none) or more"),
    ("subscriber_buffer_events", lambda count: count >= 1, "at least 1"),
    ("subscription_heartbeat_seconds", lambda seconds: seconds > 0, "a positive duration"),
    ("replica_max_lag_seconds", lambda seconds: seconds > 0, "a positive duration"),
    ("checkpoint_interval_seconds", lambda seconds: seconds > 0, "a positive duration"),
)
