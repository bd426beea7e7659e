"""API keys: created with scopes, stored as hashes only, checked in constant time.

A token is ``ldg_<key id>_<secret>``. Only the SHA-256 of the whole token is stored: a token
carries 256 random bits, so a fast hash is enough (there is nothing to brute-force), and a
database dump reveals no usable token. The key id lets a request find its row without a
search on the secret; the digest is then compared with ``hmac.compare_digest``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass

import asyncpg

from events.log import Connection
from service.notifications import Listener

log = logging.getLogger(__name__)

SCOPES = ("events:write", "events:read", "webhooks:manage", "admin", "audit")
KEYS_CHANNEL = "ledger_keys"
MAX_CACHED_KEYS = 10_000
PREFIX = "ldg_"


class KeyRequestError(ValueError):
    """A key request names unknown scopes or an unknown key."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as listed: never its token."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    created_at: str
    revoked_at: str | None


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def parse_scopes(text: str) -> list[str]:
    """Split ``a,b`` into scopes, refusing unknown ones."""
    scopes = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise KeyRequestError(
            f"unknown scopes {unknown or text!r}; choose from {', '.join(SCOPES)}"
        )
    return scopes


async def create_key(
    conn: Connection, name: str, scopes: list[str], token: str | None = None
) -> tuple[str, str]:
    """Create a key; return its id and its token (the only time the token exists).

    ``token`` is for the local demo only, whose token is printed in the README.
    """
    key_id = secrets.token_hex(6)
    if token is None:
        token = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    else:
        key_id = token.removeprefix(PREFIX).partition("_")[0]
    await conn.execute(
        "INSERT INTO api_keys (key_id, name, scopes, token_hash) VALUES ($1, $2, $3, $4)",
        key_id,
        name,
        scopes,
        _digest(token),
    )
    return key_id, token


async def list_keys(conn: asyncpg.Connection) -> list[ApiKey]:
    """Return every key, newest first."""
    rows = await conn.fetch(
        "SELECT key_id, name, scopes, created_at, revoked_at FROM api_keys ORDER BY created_at DESC"
    )
    return [
        ApiKey(
            r["key_id"],
            r["name"],
            tuple(r["scopes"]),
            r["created_at"].isoformat(),
            r["revoked_at"].isoformat() if r["revoked_at"] else None,
        )
        for r in rows
    ]


async def revoke_key(conn: asyncpg.Connection, key_id: str) -> None:
    """Revoke a key and tell every running process to forget it at once."""
    # One statement: the notification is sent exactly when, and only if, the revocation commits.
    revoked = await conn.fetchrow(
        """WITH revoked AS (
               UPDATE api_keys SET revoked_at = now()
               WHERE key_id = $1 AND revoked_at IS NULL RETURNING key_id
           )
           SELECT pg_notify($2, key_id) FROM revoked""",
        key_id,
        KEYS_CHANNEL,
    )
    if revoked is None:
        raise KeyRequestError(f"no active key {key_id!r}")


@dataclass(frozen=True, slots=True)
class _Entry:
    digest: bytes | None
    scopes: frozenset[str]
    loaded_at: float


class KeyCache:
    """Answers "which scopes does this token have?" from memory, loading keys on first use.

    A revocation is announced by NOTIFY and drops the key from every running process's cache
    as soon as the notification arrives (milliseconds). Entries also expire after ``ttl``
    seconds, and the whole cache is cleared whenever the notification connection is
    re-established, so a lost notification delays a revocation by at most ``ttl``.
    """

    def __init__(self, pool: asyncpg.Pool, ttl: float = 5.0) -> None:
        self._pool = pool
        self._ttl = ttl
        self._entries: dict[str, _Entry] = {}

    def listen(self, listener: Listener) -> None:
        """Follow revocations announced on ``listener``."""
        listener.subscribe(KEYS_CHANNEL, self.forget)
        listener.on_connect(self._entries.clear)

    def forget(self, key_id: str) -> None:
        """Drop a key from the cache; the next request with it reloads it."""
        self._entries.pop(key_id, None)

    async def scopes_of(self, token: str) -> frozenset[str] | None:
        """Return the token's scopes, or None when it is not a valid, unrevoked token."""
        if not token.startswith(PREFIX):
            return None
        key_id, sep, _ = token[len(PREFIX) :].partition("_")
        if not sep or len(key_id) != 12:
            return None
        entry = self._entries.get(key_id)
        if entry is None or time.monotonic() - entry.loaded_at > self._ttl:
            try:
                entry = await self._load(key_id)
            except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError):
                # The primary is unreachable: standbys may still answer reads, and no key can
                # be revoked meanwhile (a revocation is written on the primary), so a key
                # already checked stays as it was.
                if entry is None:
                    raise
        if entry.digest is None or not hmac.compare_digest(entry.digest, _digest(token)):
            return None
        return entry.scopes

    async def _load(self, key_id: str) -> _Entry:
        row = await self._pool.fetchrow(
            "SELECT token_hash, scopes FROM api_keys WHERE key_id = $1 AND revoked_at IS NULL",
            key_id,
        )
        if row is None:
            # Unknown ids are remembered for the same while, so that a flood of made-up tokens
            # costs no query each; the memory for them is bounded.
            entry = _Entry(None, frozenset(), time.monotonic())
            if len(self._entries) >= MAX_CACHED_KEYS:
                self._entries = {k: e for k, e in self._entries.items() if e.digest is not None}
            if len(self._entries) < MAX_CACHED_KEYS:
                self._entries[key_id] = entry
            return entry
        entry = _Entry(bytes(row["token_hash"]), frozenset(row["scopes"]), time.monotonic())
        self._entries[key_id] = entry
        return entry
