"""The ledger's Ed25519 signing key: where it is kept, how it is made, what it signs with.

The private key never leaves this module in any form but signatures: no log line, answer or
error message carries it (errors name the file, never its content).
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from events.notes import Checkpoint, Verifier, check_name, sign_note, vkey
from service.settings import Settings

log = logging.getLogger(__name__)

KEY_FILE_NAME = "checkpoint-signing-key.pem"


class SigningKeyError(RuntimeError):
    """The configured key cannot be read or is not an Ed25519 private key."""


@dataclass(frozen=True, repr=False)
class Signer:
    """Signs checkpoints of the log named ``origin`` (also the key's name)."""

    origin: str
    _key: Ed25519PrivateKey

    def __repr__(self) -> str:  # never the key
        return f"Signer({self.origin!r})"

    @property
    def vkey(self) -> str:
        """The verifier key, as monitors and clients pin it."""
        return vkey(self.origin, self._key)

    @property
    def verifier(self) -> Verifier:
        """The verifier of this signer's notes."""
        return Verifier.parse(self.vkey)

    def sign(self, checkpoint: Checkpoint) -> str:
        """Return the checkpoint as a signed note."""
        return sign_note(checkpoint.text(), self.origin, self._key)


def log_origin(settings: Settings) -> str:
    """Return the log's origin: LEDGER_LOG_ORIGIN, or one derived from the host's name."""
    origin = settings.log_origin or f"{socket.gethostname().lower() or 'localhost'}/ledger"
    return check_name(origin)


def key_path(settings: Settings) -> Path:
    """Return where the key is: LEDGER_SIGNING_KEY_FILE, or a file in LEDGER_DATA_DIR."""
    return settings.signing_key_file or settings.data_dir / KEY_FILE_NAME


def load_signer(settings: Settings, *, create: bool) -> Signer | None:
    """Read the signing key; with ``create`` (and no key file configured), make one if none.

    Returns None when there is no key and ``create`` is false.
    """
    path = key_path(settings)
    if not path.exists():
        if settings.signing_key_file is not None:
            raise SigningKeyError(f"LEDGER_SIGNING_KEY_FILE: {path} does not exist")
        if not create:
            return None
        _generate(path)
    return Signer(log_origin(settings), _read(path))


def _generate(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    try:  # O_EXCL: of two processes starting at once, one writes and both read the same key
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    log.warning(
        "generated a new checkpoint signing key in %s (mode 0600): keep it safe and back it up; "
        "`ledger keys public` prints its verifier key for monitors",
        path,
    )


def _read(path: Path) -> Ed25519PrivateKey:
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        kind = type(exc).__name__
        raise SigningKeyError(
            f"cannot read the signing key in {path} ({kind}): give a PEM Ed25519 private key"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"the key in {path} is not an Ed25519 private key")
    return key
