"""Signed checkpoints and receipts read by tlog-scales, and its notes read here."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from events.merkle import leaf_hash
from events.notes import (
    Checkpoint,
    NoteError,
    Receipt,
    Verifier,
    receipt_text,
    sign_note,
    signed_checkpoint,
    vkey,
)

ORIGIN = "ledger.example/log"
KEY = Ed25519PrivateKey.generate()
ROOT = bytes(range(32))


def _signed(size: int = 7, root: bytes = ROOT) -> str:
    return sign_note(Checkpoint(ORIGIN, size, root).text(), ORIGIN, KEY)


def test_tlog_scales_verifies_our_checkpoint_with_our_vkey() -> None:
    from tlog_scales.signing import Vkey
    from tlog_scales.tlog import Checkpoint as Theirs

    theirs = Theirs.from_text(_signed())
    theirs.verify(Vkey.from_string(vkey(ORIGIN, KEY)))
    assert (theirs.origin, theirs.size, theirs.root_hash) == (ORIGIN, 7, ROOT)


def test_we_verify_a_checkpoint_tlog_scales_signed() -> None:
    from tlog_scales.signing import PlainEd25519Signer
    from tlog_scales.tlog import Checkpoint as Theirs

    theirs = Theirs.make_signed(ORIGIN, 9, ROOT, [PlainEd25519Signer(ORIGIN, KEY)])
    checkpoint = signed_checkpoint(theirs.serialize(), Verifier.parse(vkey(ORIGIN, KEY)))
    assert checkpoint == Checkpoint(ORIGIN, 9, ROOT)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda note: note.replace("\n7\n", "\n8\n"),
        lambda note: note.replace(ORIGIN + "\n", "other.example/log\n", 1),
        lambda note: note[:-6] + ("A" if note[-6] != "A" else "B") + note[-5:],
    ],
)
def test_an_altered_checkpoint_is_refused(tamper: object) -> None:
    verifier = Verifier.parse(vkey(ORIGIN, KEY))
    with pytest.raises(NoteError):
        signed_checkpoint(tamper(_signed()), verifier)  # type: ignore[operator]


def test_another_key_is_refused() -> None:
    other = Verifier.parse(vkey(ORIGIN, Ed25519PrivateKey.generate()))
    with pytest.raises(NoteError, match="no signature"):
        signed_checkpoint(_signed(), other)


def test_a_verifier_key_whose_id_does_not_match_is_refused() -> None:
    name, key_id, key = vkey(ORIGIN, KEY).split("+", 2)
    with pytest.raises(NoteError, match="does not match"):
        Verifier.parse(f"{name}+{'0' * 8 if key_id != '0' * 8 else '1' * 8}+{key}")


def test_a_receipt_round_trips_and_proves_its_entry() -> None:
    entry = b"the only event"
    note = _signed(1, leaf_hash(entry))
    receipt = Receipt.parse(receipt_text(0, [], note, entry))
    assert receipt.extra == entry
    checkpoint = receipt.verify(leaf_hash(entry), Verifier.parse(vkey(ORIGIN, KEY)))
    assert checkpoint.size == 1
    with pytest.raises(NoteError, match="not proven"):
        receipt.verify(leaf_hash(b"another event"), Verifier.parse(vkey(ORIGIN, KEY)))
