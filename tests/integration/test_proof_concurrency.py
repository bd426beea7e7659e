"""Checkpoints taken while eight writers append: each extends every earlier one."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

from events.leaves import recorded_leaf, shown_event
from events.merkle import verify_consistency, verify_inclusion
from events.notes import Checkpoint, signed_checkpoint
from tests import factories
from tests.proof_support import checkpoint_at_least, signing_client, unb64, verifier
from tests.support import Tokens, unique_id

WRITERS = 8
EACH = 5  # events per writer per phase
PHASES = 3


async def test_checkpoints_during_appends_are_consistent_and_cover_every_receipt(
    db_url: str, tokens: Tokens, tmp_path: Path
) -> None:
    async with signing_client(db_url, tmp_path) as client:
        key = await verifier(client)
        receipts: list[dict[str, Any]] = []
        seen: list[Checkpoint] = []
        done = asyncio.Event()
        companies = [unique_id() for _ in range(WRITERS)]

        async def writer(company: str, phase: int) -> None:
            envelopes = [
                factories.valuation_reported(company, value=str(1000 + phase * EACH + i))
                for i in range(EACH)
            ]
            if phase == 0:
                envelopes[0] = factories.company_registered(company)
            for envelope in envelopes:
                answer = await client.post("/events", json=envelope, headers=tokens.header("write"))
                assert answer.status_code == 201, answer.text
                receipts.append(answer.json())

        async def watcher() -> None:
            while not done.is_set():
                answer = await client.get("/ledger/checkpoint", headers=tokens.header("read"))
                if answer.status_code == 200:
                    seen.append(signed_checkpoint(answer.text, key))
                await asyncio.sleep(0.01)

        watching = asyncio.create_task(watcher())
        for phase in range(PHASES):
            # eight writers at once; between phases a checkpoint is awaited, so that at least
            # one is taken per phase whatever the timing
            await asyncio.gather(*(writer(company, phase) for company in companies))
            seen.append((await checkpoint_at_least(client, tokens, len(receipts)))[1])
        done.set()
        await watching
        seen = sorted({c.size: c for c in seen}.values(), key=lambda c: c.size)
        assert len(seen) >= PHASES
        # then every checkpoint extends every earlier one
        for i, first in enumerate(seen):
            for second in seen[i + 1 :]:
                answer = await client.get(
                    "/ledger/proofs/consistency",
                    params={"from": first.size, "to": second.size},
                    headers=tokens.header("read"),
                )
                hashes = unb64(answer.json()["hashes"])
                verify_consistency(first.size, second.size, first.root, second.root, hashes)
        # and every acknowledged event is proven in the checkpoint after it
        for receipt in receipts:
            event = shown_event.decode(
                (
                    await client.get(
                        f"/events/{receipt['event_id']}", headers=tokens.header("read")
                    )
                ).content
            )
            after = next(c for c in seen if c.size >= receipt["position"])
            proof = (
                await client.get(
                    "/ledger/proofs/inclusion",
                    params={"position": receipt["position"], "tree_size": after.size},
                    headers=tokens.header("read"),
                )
            ).json()
            assert base64.b64decode(proof["leaf_hash"]) == recorded_leaf(event)
            verify_inclusion(
                receipt["position"] - 1,
                after.size,
                recorded_leaf(event),
                unb64(proof["hashes"]),
                after.root,
            )
