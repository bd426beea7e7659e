"""Checkpoints, proofs and receipts as the service answers them, checked by tools of others."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from events.merkle import ProofError, verify_consistency, verify_inclusion
from events.notes import Receipt
from tests import factories
from tests.proof_support import (
    checkpoint_at_least,
    proof_settings,
    signing_client,
    unb64,
    verifier,
)
from tests.support import Tokens, append, client_for, unique_id


async def _append_many(client: object, tokens: Tokens, count: int) -> list[dict[str, object]]:
    company = unique_id()
    receipts = [await append(client, tokens, factories.company_registered(company))]  # type: ignore[arg-type]
    for i in range(count - 1):
        envelope = factories.valuation_reported(company, value=str(1_000_000 + i))
        receipts.append(await append(client, tokens, envelope))  # type: ignore[arg-type]
    return receipts


async def test_checkpoint_and_proofs_verify_with_tlog_scales(
    db_url: str, tokens: Tokens, tmp_path: Path
) -> None:
    from tlog_scales.signing import Vkey
    from tlog_scales.tlog import Checkpoint as Theirs
    from tlog_scales.tlog import ConsistencyProof, InclusionProof

    async with signing_client(db_url, tmp_path) as client:
        # given a ledger of 9 events, then 14, each signed
        await _append_many(client, tokens, 9)
        first_note, _ = await checkpoint_at_least(client, tokens, 9)
        await _append_many(client, tokens, 5)
        second_note, _ = await checkpoint_at_least(client, tokens, 14)
        vkey = (await client.get("/ledger/public-key")).text.strip()
        first, second = Theirs.from_text(first_note), Theirs.from_text(second_note)
        # then tlog-scales verifies the signatures, the inclusion of each event, and consistency
        first.verify(Vkey.from_string(vkey))
        second.verify(Vkey.from_string(vkey))
        assert "\n\n" in first_note and first_note.count("\n") == 5  # no extension lines
        for position in range(1, second.size + 1):
            answer = await client.get(
                "/ledger/proofs/inclusion",
                params={"position": position, "tree_size": second.size},
                headers=tokens.header("read"),
            )
            proof = answer.json()
            InclusionProof(position - 1, second.size, unb64(proof["hashes"])).check(
                base64.b64decode(proof["leaf_hash"]), second.root_hash
            )
        answer = await client.get(
            "/ledger/proofs/consistency",
            params={"from": first.size, "to": second.size},
            headers=tokens.header("read"),
        )
        ConsistencyProof(first.size, second.size, unb64(answer.json()["hashes"])).check(
            first.root_hash, second.root_hash
        )


async def test_every_proof_of_a_small_log_verifies_and_a_flipped_hash_does_not(
    db_url: str, tokens: Tokens, tmp_path: Path
) -> None:
    async with signing_client(db_url, tmp_path) as client:
        await _append_many(client, tokens, 24)
        _, checkpoint = await checkpoint_at_least(client, tokens, 24)
        roots: dict[int, bytes] = {checkpoint.size: checkpoint.root}
        # the root of each smaller size, from the consistency proofs' first tree is not given:
        # recompute it from leaf hashes proven in the signed tree
        leaves = []
        for position in range(1, 25):
            proof = (
                await client.get(
                    "/ledger/proofs/inclusion",
                    params={"position": position},
                    headers=tokens.header("read"),
                )
            ).json()
            leaves.append(base64.b64decode(proof["leaf_hash"]))
        from events.merkle import Border

        border = Border()
        for size, leaf in enumerate(leaves, start=1):
            border.append(leaf)
            roots[size] = border.root()
        assert roots[24] == checkpoint.root
        for size in range(1, 25):
            for position in range(1, size + 1):
                proof = (
                    await client.get(
                        "/ledger/proofs/inclusion",
                        params={"position": position, "tree_size": size},
                        headers=tokens.header("read"),
                    )
                ).json()
                hashes = unb64(proof["hashes"])
                verify_inclusion(position - 1, size, leaves[position - 1], hashes, roots[size])
                for i in range(len(hashes)):
                    flipped = [*hashes]
                    flipped[i] = bytes([hashes[i][0] ^ 0x80]) + hashes[i][1:]
                    with pytest.raises(ProofError):
                        verify_inclusion(
                            position - 1, size, leaves[position - 1], flipped, roots[size]
                        )
            for first in range(1, size + 1):
                proof = (
                    await client.get(
                        "/ledger/proofs/consistency",
                        params={"from": first, "to": size},
                        headers=tokens.header("read"),
                    )
                ).json()
                hashes = unb64(proof["hashes"])
                verify_consistency(first, size, roots[first], roots[size], hashes)
                for i in range(len(hashes)):
                    flipped = [*hashes]
                    flipped[i] = bytes([hashes[i][0] ^ 0x80]) + hashes[i][1:]
                    with pytest.raises(ProofError):
                        verify_consistency(first, size, roots[first], roots[size], flipped)


async def test_a_receipt_proves_its_event_offline(
    db_url: str, tokens: Tokens, tmp_path: Path
) -> None:
    async with signing_client(db_url, tmp_path) as client:
        receipts = await _append_many(client, tokens, 5)
        await checkpoint_at_least(client, tokens, 5)
        key = await verifier(client)
        event_id = receipts[2]["event_id"]
        answer = await client.get(f"/events/{event_id}/receipt", headers=tokens.header("read"))
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/plain")
        receipt = Receipt.parse(answer.text)
        from events.merkle import leaf_hash

        assert receipt.extra is not None and receipt.index == 2
        receipt.verify(leaf_hash(receipt.extra), key)


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/ledger/proofs/inclusion", {"position": "0"}, "position"),
        ("/ledger/proofs/inclusion", {"position": "99"}, "position"),
        ("/ledger/proofs/inclusion", {"position": "x"}, "position"),
        ("/ledger/proofs/inclusion", {}, "position"),
        ("/ledger/proofs/inclusion", {"position": "1", "tree_size": "1000"}, "tree_size"),
        ("/ledger/proofs/inclusion", {"position": "1", "tree_size": "-1"}, "tree_size"),
        ("/ledger/proofs/consistency", {"from": "3", "to": "2"}, "from"),
        ("/ledger/proofs/consistency", {"from": "1", "to": "1000"}, "to"),
        ("/ledger/proofs/consistency", {"from": "1.5", "to": "2"}, "from"),
        ("/ledger/proofs/consistency", {"from": "0", "to": "2"}, "from"),
    ],
)
async def test_bad_proof_parameters_are_400_naming_the_parameter(
    db_url: str, tokens: Tokens, tmp_path: Path, path: str, params: dict[str, str], field: str
) -> None:
    async with signing_client(db_url, tmp_path) as client:
        await _append_many(client, tokens, 3)
        await checkpoint_at_least(client, tokens, 3)
        answer = await client.get(path, params=params, headers=tokens.header("read"))
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["errors"][0]["field"] == field


async def test_proofs_need_a_read_token_and_the_public_key_none(
    db_url: str, tokens: Tokens, tmp_path: Path
) -> None:
    async with signing_client(db_url, tmp_path) as client:
        assert (await client.get("/ledger/checkpoint")).status_code == 401
        assert (await client.get("/ledger/proofs/consistency?from=1&to=1")).status_code == 401
        answer = await client.get("/ledger/public-key")
    assert answer.status_code == 200 and answer.text.startswith("ledger.test/log+")
    key_file = tmp_path / "checkpoint-signing-key.pem"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.read_text() not in answer.text


async def test_an_auditor_checks_checkpoints_proofs_and_receipts(
    db_url: str, tokens: Tokens, tmp_path: Path
) -> None:
    async with signing_client(db_url, tmp_path) as client:
        receipts = await _append_many(client, tokens, 3)
        await checkpoint_at_least(client, tokens, 3)
        audit = tokens.header("audit")
        for path in (
            "/ledger/checkpoint",
            "/ledger/proofs/inclusion?position=1",
            "/ledger/proofs/consistency?from=1&to=2",
            f"/events/{receipts[0]['event_id']}/receipt",
        ):
            answer = await client.get(path, headers=audit)
            assert answer.status_code == 200, (path, answer.text)
        assert (
            await client.get("/ledger/checkpoint", headers=tokens.header("write"))
        ).status_code == 403


async def test_a_size_signed_since_a_process_last_looked_is_proven_not_refused(
    db_url: str, tokens: Tokens, tmp_path: Path
) -> None:
    # a monitor gets a checkpoint from one process, then asks another for the proof up to it
    async with (
        signing_client(db_url, tmp_path) as signing,
        client_for(
            db_url,
            **{**proof_settings(tmp_path), "notary": False, "checkpoint_interval_seconds": 60},
        ) as other,
    ):
        await _append_many(signing, tokens, 3)
        await checkpoint_at_least(signing, tokens, 3)
        read = tokens.header("read")
        assert (await other.get("/ledger/checkpoint", headers=read)).status_code == 200
        await _append_many(signing, tokens, 3)
        _, latest = await checkpoint_at_least(signing, tokens, 6)
        # the other process read its checkpoint well within its 15 s: it looks again
        proof = await other.get(
            "/ledger/proofs/consistency", params={"from": 3, "to": latest.size}, headers=read
        )
        assert proof.status_code == 200, proof.text
        inclusion = await other.get(
            "/ledger/proofs/inclusion",
            params={"position": latest.size, "tree_size": latest.size},
            headers=read,
        )
        assert inclusion.status_code == 200, inclusion.text
        beyond = await other.get(
            "/ledger/proofs/consistency", params={"from": 3, "to": 1000}, headers=read
        )
    assert beyond.status_code == 400
    assert beyond.json()["errors"][0]["field"] == "to"
