"""Settings, read once from the environment."""

from __future__ import annotations

import os
from pathlib import Path

from msgspec import Struct

MIN_POOL_SIZE = 3


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
    log_level: str = "info"

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
            log_level=env.get("LEDGER_LOG_LEVEL", defaults.log_level),
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
        return self
