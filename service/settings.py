"""Settings, read once from the environment."""

from __future__ import annotations

import os
from pathlib import Path

from msgspec import Struct

MIN_POOL_SIZE = 3
DEFAULT_RETRY_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_TRUE = {"1", "true", "yes", "on"}


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
    webhook_allow_private: bool = False
    webhook_retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    webhook_timeout_seconds: float = 15.0
    webhook_concurrency: int = 64
    webhook_disable_after_seconds: float = 5 * 86400.0
    signing_key_file: Path | None = None
    log_origin: str | None = None
    checkpoint_interval_seconds: float = 1.0
    notary: bool = True  # build the tree and sign checkpoints in this process (one at a time)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default: the process environment)."""
        env = dict(os.environ if env is None else env)
        defaults = cls()
        return cls(
            database_url=env.get("DATABASE_URL") or None,
            data_dir=Path(env.get("LEDGER_DATA_DIR", str(defaults.data_dir))),
            host=env.get("LEDGER_HOST", defaults.host),
            port=int(env.get("LEDGER_PORT", defaults.port)),
            max_body_bytes=int(env.get("LEDGER_MAX_BODY_BYTES", defaults.max_body_bytes)),
            pool_size=int(env.get("LEDGER_POOL_SIZE", defaults.pool_size)),
            append_queue_limit=int(
                env.get("LEDGER_APPEND_QUEUE_LIMIT", defaults.append_queue_limit)
            ),
            request_timeout_seconds=float(
                env.get("LEDGER_REQUEST_TIMEOUT", defaults.request_timeout_seconds)
            ),
            header_timeout_seconds=parse_duration(
                env.get("LEDGER_HEADER_TIMEOUT", str(defaults.header_timeout_seconds))
            ),
            body_timeout_seconds=parse_duration(
                env.get("LEDGER_BODY_TIMEOUT", str(defaults.body_timeout_seconds))
            ),
            log_level=env.get("LEDGER_LOG_LEVEL", defaults.log_level),
            log_format=env.get("LEDGER_LOG_FORMAT", defaults.log_format),
            max_concurrent_requests=int(
                env.get("LEDGER_MAX_CONCURRENT_REQUESTS", defaults.max_concurrent_requests)
            ),
            rate_limit=float(env.get("LEDGER_RATE_LIMIT", defaults.rate_limit)),
            rate_burst=int(env.get("LEDGER_RATE_BURST", defaults.rate_burst)),
            stream_cache_events=int(
                env.get("LEDGER_STREAM_CACHE_EVENTS", defaults.stream_cache_events)
            ),
            webhook_allow_private=env.get("LEDGER_WEBHOOK_ALLOW_PRIVATE", "").lower() in _TRUE,
            webhook_retry_schedule=parse_schedule(env["LEDGER_WEBHOOK_RETRY_SCHEDULE"])
            if "LEDGER_WEBHOOK_RETRY_SCHEDULE" in env
            else defaults.webhook_retry_schedule,
            webhook_timeout_seconds=parse_duration(
                env.get("LEDGER_WEBHOOK_TIMEOUT", str(defaults.webhook_timeout_seconds))
            ),
            webhook_concurrency=int(
                env.get("LEDGER_WEBHOOK_CONCURRENCY", defaults.webhook_concurrency)
            ),
            webhook_disable_after_seconds=parse_duration(
                env.get("LEDGER_WEBHOOK_DISABLE_AFTER", str(defaults.webhook_disable_after_seconds))
            ),
            signing_key_file=Path(env["LEDGER_SIGNING_KEY_FILE"])
            if env.get("LEDGER_SIGNING_KEY_FILE")
            else None,
            log_origin=env.get("LEDGER_LOG_ORIGIN") or None,
            notary=env.get("LEDGER_NOTARY", "on").lower() in _TRUE,
            checkpoint_interval_seconds=parse_duration(
                env.get("LEDGER_CHECKPOINT_INTERVAL", str(defaults.checkpoint_interval_seconds))
            ),
        ).checked()

    def checked(self) -> Settings:
        """Return these settings, or raise ValueError naming the one that cannot work."""
        if self.pool_size < MIN_POOL_SIZE:
            raise ValueError(
                f"LEDGER_POOL_SIZE must be at least {MIN_POOL_SIZE}: the append task holds two "
                "connections and reads need at least one"
            )
        if self.max_body_bytes < 1024:
            raise ValueError("LEDGER_MAX_BODY_BYTES must be at least 1024")
        if self.max_concurrent_requests < 1:
            raise ValueError("LEDGER_MAX_CONCURRENT_REQUESTS must be at least 1")
        if self.rate_limit < 0 or self.rate_burst < 1:
            raise ValueError("LEDGER_RATE_LIMIT must be 0 or more and LEDGER_RATE_BURST 1 or more")
        if self.stream_cache_events < 0:
            raise ValueError("LEDGER_STREAM_CACHE_EVENTS must be 0 (no cache) or more")
        if self.log_format not in ("json", "text"):
            raise ValueError("LEDGER_LOG_FORMAT must be json or text")
        if self.header_timeout_seconds <= 0 or self.body_timeout_seconds <= 0:
            raise ValueError("LEDGER_HEADER_TIMEOUT and LEDGER_BODY_TIMEOUT must be positive")
        if self.webhook_timeout_seconds <= 0:
            raise ValueError("LEDGER_WEBHOOK_TIMEOUT must be positive")
        if self.checkpoint_interval_seconds <= 0:
            raise ValueError("LEDGER_CHECKPOINT_INTERVAL must be positive")
        if self.webhook_concurrency < 1:
            raise ValueError("LEDGER_WEBHOOK_CONCURRENCY must be at least 1")
        return self
