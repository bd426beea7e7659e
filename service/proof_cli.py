"""The command line of the verifiable log: the public key, the monitor and offline receipts."""

from __future__ import annotations

import argparse
import base64
import os
import sys
import time
from pathlib import Path

import httpx
import msgspec

from events.merkle import ProofError, leaf_hash, verify_consistency
from events.notes import Checkpoint, NoteError, Receipt, Verifier, signed_checkpoint
from service.settings import Settings

FORKED, TROUBLE = 1, 2  # exit codes: the log is not what it signed; cannot tell


def keys_public(settings: Settings, args: argparse.Namespace) -> int:
    """Print the verifier key of the ledger's checkpoints."""
    from service.signing import SigningKeyError, key_path, load_signer

    try:
        signer = load_signer(settings, create=False)
    except SigningKeyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return TROUBLE
    if signer is None:
        print(
            f"error: no signing key in {key_path(settings)}: `ledger serve` makes one on first "
            "start, or set LEDGER_SIGNING_KEY_FILE",
            file=sys.stderr,
        )
        return TROUBLE
    print(signer.vkey)
    return 0


class MonitorError(Exception):
    """The log is not consistent with what it signed before (exit 1)."""


def monitor(settings: Settings, args: argparse.Namespace) -> int:
    """Check the ledger's latest checkpoint against the one saved; save it; repeat if asked."""
    try:
        key = Verifier.parse(args.key)
    except NoteError as exc:
        print(f"error: --key: {exc}", file=sys.stderr)
        return TROUBLE
    token = os.environ.get("LEDGER_TOKEN", "")
    with httpx.Client(
        base_url=args.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        while True:
            try:
                print(_watch_once(http, key, args.state), flush=True)
            except MonitorError as exc:
                print(f"FORK: {exc}", flush=True)
                return FORKED
            except (httpx.HTTPError, OSError, NoteError) as exc:
                print(f"error: {exc}", file=sys.stderr, flush=True)
                if args.every is None:
                    return TROUBLE
            if args.every is None:
                return 0
            time.sleep(args.every)


def _watch_once(http: httpx.Client, key: Verifier, state: Path) -> str:
    saved = state.read_text() if state.exists() else None
    kept = signed_checkpoint(saved, key) if saved else None
    answer = http.get("/ledger/checkpoint")
    if answer.status_code == 503 and _field(answer, "signing") == "stopped":
        raise MonitorError(
            f"the ledger says it has stopped signing: {_field(answer, 'detail')}\n"
            f"the last checkpoint this monitor verified:\n{saved or '(none yet)'}"
        )
    answer.raise_for_status()
    note = answer.text
    try:
        latest = signed_checkpoint(note, key)
    except NoteError as exc:
        raise MonitorError(f"the ledger's checkpoint does not verify: {exc}\n{note}") from None
    if kept is not None:
        _check_extends(http, kept, latest, saved or "", note)
    tmp = state.with_name(state.name + ".tmp")
    tmp.write_text(note)
    tmp.replace(state)  # the state file is never left half-written
    grown = f"from {kept.size} " if kept else ""
    return f"consistent: tree size {grown}to {latest.size}, root {latest.root.hex()}"


def _field(answer: httpx.Response, name: str) -> object:
    """A field of a JSON answer; None when the answer is not a JSON object."""
    try:
        body = answer.json()
    except ValueError:
        return None
    return body.get(name) if isinstance(body, dict) else None


def _check_extends(
    http: httpx.Client, kept: Checkpoint, latest: Checkpoint, kept_note: str, note: str
) -> None:
    both = f"\nthe checkpoint kept:\n{kept_note}\nthe checkpoint now:\n{note}"
    if latest.size < kept.size:
        raise MonitorError(f"the log shrank from {kept.size} to {latest.size} events" + both)
    answer = http.get("/ledger/proofs/consistency", params={"from": kept.size, "to": latest.size})
    if answer.status_code == 400:
        raise MonitorError(f"the ledger cannot prove consistency: {answer.text}" + both)
    answer.raise_for_status()
    hashes = [base64.b64decode(h) for h in answer.json()["hashes"]]
    try:
        verify_consistency(kept.size, latest.size, kept.root, latest.root, hashes)
    except ProofError as exc:
        raise MonitorError(f"the two signed checkpoints conflict: {exc}" + both) from None


class _Entry(msgspec.Struct):
    position: int
    event_id: str
    type: str
    stream: str


def verify_receipt(settings: Settings, args: argparse.Namespace) -> int:
    """Check a receipt offline against a pinned key: signature, then inclusion of its event."""
    try:
        key = Verifier.parse(args.key)
    except NoteError as exc:
        print(f"error: --key: {exc}", file=sys.stderr)
        return TROUBLE
    try:
        receipt = Receipt.parse(args.file.read_text())
        if receipt.extra is None:
            raise NoteError("the receipt carries no event (its extra line)")
        entry = msgspec.json.decode(receipt.extra, type=_Entry)
        if entry.position != receipt.index + 1:
            raise NoteError(f"the event is at position {entry.position}, not {receipt.index + 1}")
        checkpoint = receipt.verify(leaf_hash(receipt.extra), key)
    except (OSError, msgspec.DecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return TROUBLE
    except NoteError as exc:
        print(f"NOT valid: {exc}")
        return FORKED
    print(
        f"valid: event {entry.event_id} ({entry.type}, {entry.stream}) is at position "
        f"{entry.position} of the log {checkpoint.origin}, in its signed tree of "
        f"{checkpoint.size} events (root {checkpoint.root.hex()})"
    )
    return 0
