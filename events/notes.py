"""Signed checkpoints and receipts in the C2SP text formats, with Ed25519 keys.

- ``c2sp.org/signed-note``: a text ending in a newline, a blank line, then signature lines
  ``— <key name> base64(key id || signature)``; the key id is the first four bytes of
  ``SHA-256(key name || 0x0A || 0x01 || public key)`` and the key travels as a verifier key
  ``<name>+<hex key id>+base64(0x01 || public key)``.
- ``c2sp.org/tlog-checkpoint``: the note text is the origin, the tree size and the base64 root
  hash, one per line (this ledger writes no extension lines).
- ``c2sp.org/tlog-proof@v1``: a receipt; the entry's index, its inclusion proof, a blank line,
  then the signed checkpoint verbatim.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from events.merkle import ProofError, verify_inclusion

ED25519 = b"\x01"
PROOF_HEADER = "c2sp.org/tlog-proof@v1"
_SIGNATURE = re.compile(r"^\u2014 (\S+) ([A-Za-z0-9+/=]+)$")
_DECIMAL = re.compile(r"^(0|[1-9][0-9]{0,18})$")


class NoteError(ValueError):
    """A note, checkpoint, key or receipt that is malformed or whose signature does not verify."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError(f"{what} is not base64: {text[:60]!r}") from None


def check_name(name: str) -> str:
    """Return ``name`` if it can name a key (non-empty, no spaces, no '+'), else raise."""
    if not name or "+" in name or any(c.isspace() for c in name):
        raise NoteError(f"{name!r} cannot name a key: it must be non-empty, without spaces or '+'")
    return name


def key_id(name: str, public: bytes) -> bytes:
    """Return the four-byte id of an Ed25519 key of that name."""
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public).digest()[:4]


def raw_public(key: Ed25519PrivateKey) -> bytes:
    """Return the 32 bytes of the key's public half."""
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def vkey(name: str, key: Ed25519PrivateKey) -> str:
    """Return the verifier key of ``key`` under ``name``."""
    public = raw_public(key)
    return f"{check_name(name)}+{key_id(name, public).hex()}+{_b64(ED25519 + public)}"


@dataclass(frozen=True)
class Verifier:
    """A verifier key: the name, id and public key a signature must match."""

    name: str
    id: bytes
    public: bytes

    @classmethod
    def parse(cls, text: str) -> Verifier:
        """Parse ``<name>+<hex key id>+<base64 key>``, refusing a key whose id does not fit."""
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise NoteError("a verifier key reads <name>+<hex key id>+<base64 key>")
        name, hex_id, encoded = parts
        check_name(name)
        raw = _unb64(encoded, "the verifier key")
        if len(raw) != 33 or raw[:1] != ED25519:
            raise NoteError("the verifier key is not an Ed25519 key (type 0x01, 32 bytes)")
        public = raw[1:]
        if hex_id.lower() != key_id(name, public).hex():
            raise NoteError(f"the verifier key's id {hex_id} does not match its name and key")
        return cls(name, key_id(name, public), public)

    def verify(self, note: str) -> str:
        """Return the text of ``note`` if this key signed it; raise NoteError otherwise."""
        text, signatures = split_note(note)
        mine = [s for name, s in signatures if name == self.name and s[:4] == self.id]
        if not mine:
            raise NoteError(f"the note carries no signature by {self.name}+{self.id.hex()}")
        try:
            for signature in mine:
                Ed25519PublicKey.from_public_bytes(self.public).verify(signature[4:], text.encode())
        except InvalidSignature:
            raise NoteError(f"the signature by {self.name} does not verify") from None
        return text


def sign_note(text: str, name: str, key: Ed25519PrivateKey) -> str:
    """Return ``text`` (ending in a newline) signed by ``key`` under ``name``."""
    if not text.endswith("\n"):
        raise NoteError("a note's text ends with a newline")
    signature = key_id(name, raw_public(key)) + key.sign(text.encode())
    return f"{text}\n\u2014 {check_name(name)} {_b64(signature)}\n"


def split_note(note: str) -> tuple[str, list[tuple[str, bytes]]]:
    """Split a signed note into its text and its ``(key name, key id || signature)`` lines."""
    if not note.endswith("\n") or "\n\n" not in note:
        raise NoteError("a signed note is a text, a blank line and signature lines")
    cut = note.rindex("\n\n")
    text, lines = note[: cut + 1], note[cut + 2 :].splitlines()
    signatures = []
    for line in lines:
        found = _SIGNATURE.match(line)
        if found is None:
            raise NoteError(f"not a signature line: {line[:80]!r}")
        signature = _unb64(found.group(2), "a signature")
        if len(signature) < 5:
            raise NoteError("a signature is too short")
        signatures.append((found.group(1), signature))
    if not signatures:
        raise NoteError("the note is not signed")
    return text, signatures


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: the log's origin, its size and root hash."""

    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        """Return the checkpoint's note text (no extension lines)."""
        return f"{self.origin}\n{self.size}\n{_b64(self.root)}\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a checkpoint's note text (extension lines are allowed and ignored)."""
        lines = text.split("\n")
        if len(lines) < 4 or not lines[0] or not _DECIMAL.match(lines[1]):
            raise NoteError("a checkpoint reads: origin, tree size, base64 root hash")
        root = _unb64(lines[2], "the root hash")
        if len(root) != 32:
            raise NoteError("the root hash is not 32 bytes")
        return cls(lines[0], int(lines[1]), root)


def signed_checkpoint(note: str, verifier: Verifier, origin: str | None = None) -> Checkpoint:
    """Verify a signed checkpoint against ``verifier`` (and ``origin``); return what it says."""
    checkpoint = Checkpoint.parse(verifier.verify(note))
    expected = origin or verifier.name
    if checkpoint.origin != expected:
        raise NoteError(f"the checkpoint is of log {checkpoint.origin!r}, not {expected!r}")
    return checkpoint


def receipt_text(index: int, hashes: list[bytes], note: str, entry: bytes | None = None) -> str:
    """Return a ``c2sp.org/tlog-proof@v1`` receipt for the entry at ``index``.

    ``entry`` (the bytes whose leaf hash is proven) travels as the ``extra`` line, so that the
    receipt can be checked with nothing else; a verifier hashes it, so it need not be trusted.
    """
    extra = [f"extra {_b64(entry)}"] if entry is not None else []
    lines = [PROOF_HEADER, *extra, f"index {index}", *(_b64(h) for h in hashes)]
    return "\n".join(lines) + "\n\n" + note


@dataclass(frozen=True)
class Receipt:
    """A parsed receipt: the entry's index, its inclusion proof and the signed checkpoint."""

    index: int
    hashes: list[bytes]
    note: str
    extra: bytes | None = None

    @classmethod
    def parse(cls, text: str) -> Receipt:
        """Parse a ``c2sp.org/tlog-proof@v1`` text."""
        head, blank, note = text.partition("\n\n")
        lines = head.split("\n")
        if not blank or lines[0] != PROOF_HEADER:
            raise NoteError(f"a receipt starts with {PROOF_HEADER} and holds a checkpoint")
        rest, extra = lines[1:], None
        if rest and rest[0].startswith("extra "):
            extra, rest = _unb64(rest[0][6:], "the extra data"), rest[1:]
        if not rest or not rest[0].startswith("index ") or not _DECIMAL.match(rest[0][6:]):
            raise NoteError("a receipt names the entry's index: 'index <n>'")
        hashes = [_unb64(line, "a proof hash") for line in rest[1:]]
        if any(len(h) != 32 for h in hashes):
            raise NoteError("a proof hash is not 32 bytes")
        return cls(int(rest[0][6:]), hashes, note, extra)

    def verify(self, leaf: bytes, verifier: Verifier, origin: str | None = None) -> Checkpoint:
        """Check the signature and that ``leaf`` is at ``index``; return the checkpoint."""
        checkpoint = signed_checkpoint(self.note, verifier, origin)
        try:
            verify_inclusion(self.index, checkpoint.size, leaf, self.hashes, checkpoint.root)
        except ProofError as exc:
            raise NoteError(f"the entry is not proven at index {self.index}: {exc}") from None
        return checkpoint
