"""The command line's work on the stored tree: build it, check it, export beside a checkpoint."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import msgspec

from events import tree
from events.leaves import recorded_leaf, shown_event
from events.log import Connection, head_position
from events.merkle import Border
from events.notes import NoteError, Verifier, signed_checkpoint
from events.tree_check import TreeReport, verify_tree
from service.settings import Settings


def checkpoint_beside(export: Path) -> Path:
    """Where an export's checkpoint is written: ``<export>.checkpoint``."""
    return export.with_name(export.name + ".checkpoint")


async def build_tree(conn: Connection) -> int | None:
    """Build the tree up to the head, with a progress bar; None if a notary is at it."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    if not await tree.try_lock_signer(conn):
        return None
    try:
        border = await tree.load_border(conn)
        head = await head_position(conn)
        if head <= border.size:
            return 0
        with Progress(
            TextColumn("building the Merkle tree"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.completed:,}/{task.total:,} events"),
        ) as bar:
            task = bar.add_task("tree", total=head, completed=border.size)
            return await tree.extend(
                conn, border, head, lambda size: bar.update(task, completed=size)
            )
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", tree.SIGNER_LOCK_KEY)


async def check_tree(conn: Connection) -> int:
    """Check the stored tree and the signed checkpoints against the events; print; exit code."""
    from rich.console import Console

    with Console(stderr=True).status("checking the Merkle tree…") as status:
        report = await verify_tree(conn, lambda n: status.update(f"checked {n:,} leaves…"))
    return _print_tree(report)


def _print_tree(report: TreeReport) -> int:
    if report.first_bad_leaf is not None:
        print(
            f"the Merkle tree does NOT match the events from position {report.first_bad_leaf + 1}"
        )
    for fork in report.forks:
        print(f"FORK: {fork.describe()}\nthe checkpoint signed then:\n{fork.signed.note}")
    if report.intact:
        print(f"tree intact: {report.checked} events match the stored tree and every checkpoint")
        return 0
    return 1


def export_with_checkpoint(settings: Settings, args: argparse.Namespace) -> int:
    """Export every event up to the latest signed checkpoint, and that checkpoint beside it."""
    from events.transfer import export_lines
    from service.database import connect

    if args.output is None or args.after:
        print(
            "error: --with-checkpoint exports the whole log to a file: give -o, not --after",
            file=sys.stderr,
        )
        return 2

    async def run() -> tuple[int, str | None]:
        async with connect(settings) as conn:
            latest = await tree.latest_checkpoint(conn)
            if latest is None:
                return 0, None
            count = 0
            with args.output.open("wb") as out:
                async for line in export_lines(conn, 0, latest.tree_size):
                    out.write(line)
                    count += 1
            return count, latest.note

    count, note = asyncio.run(run())
    if note is None:
        print("error: the ledger has signed no checkpoint yet", file=sys.stderr)
        return 1
    checkpoint_beside(args.output).write_text(note)
    print(f"exported {count:,} events and their signed checkpoint", file=sys.stderr)
    return 0


def verify_export_checkpoint(path: Path, key: str | None, chain_code: int) -> int:
    """If a checkpoint lies beside the export, check the export's root against it."""
    beside = checkpoint_beside(path)
    if chain_code != 0 or not beside.exists():
        return chain_code
    try:
        verifier = Verifier.parse(key) if key else None
        note = beside.read_text()
    except (OSError, NoteError) as exc:  # nothing could be checked: a bad key or file
        print(
            f"error: {beside.name if isinstance(exc, OSError) else '--key'}: {exc}", file=sys.stderr
        )
        return 2
    try:
        checkpoint = signed_checkpoint(note, verifier) if verifier else None
        size, root = _export_root(path)
    except (OSError, NoteError, ValueError) as exc:
        print(f"NOT verified against {beside.name}: {exc}")
        return 1
    claimed = checkpoint or _unsigned(note)
    if (size, root) != (claimed.size, claimed.root):
        print(
            f"NOT the signed log: the export's {size} events have root {root.hex()}, the "
            f"checkpoint says {claimed.size} events with root {claimed.root.hex()}"
        )
        return 1
    signature = "its signature verified" if key else "its signature NOT checked (give --key)"
    print(f"the export's root matches the checkpoint beside it ({size} events; {signature})")
    return 0


def _unsigned(note: str) -> Any:
    from events.notes import Checkpoint, split_note

    return Checkpoint.parse(split_note(note)[0])


def _export_root(path: Path) -> tuple[int, bytes]:
    border = Border()
    with path.open("rb") as lines:
        for line in lines:
            if not line.strip():
                continue
            try:
                event = shown_event.decode(line)
            except msgspec.DecodeError as exc:
                raise ValueError(f"line {border.size + 1}: {exc}") from None
            if event.position != border.size + 1:
                raise ValueError("a checkpoint covers a whole log: the export starts at 1")
            border.append(recorded_leaf(event))
    return border.size, border.root()
