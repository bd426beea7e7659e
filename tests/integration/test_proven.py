"""Verified answers fold exactly the events of their checkpoint, however the log has moved on."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from events.tree import SignedCheckpoint
from service import proven, verified
from tests import factories
from tests.proof_support import checkpoint_at_least, signing_client, verifier
from tests.support import Tokens, append, connected, unique_id


async def test_a_verified_answer_leaves_out_what_was_appended_after_its_checkpoint(
    db_url: str, tokens: Tokens, tmp_path: Path
) -> None:
    async with signing_client(db_url, tmp_path) as client:
        # given a company, a rule and a valuation in a signed checkpoint
        company = unique_id()
        await append(client, tokens, factories.company_registered(company))
        await append(client, tokens, factories.export_rule(unique_id("rule")))
        valued = factories.valuation_reported(company, value="1000000000")
        signed_position = (await append(client, tokens, valued))["position"]
        note, checkpoint = await checkpoint_at_least(client, tokens, signed_position)
        key = await verifier(client)
        # and a valuation and a rule appended after it
        later = factories.valuation_reported(company, value="7000000000")
        after = [(await append(client, tokens, later))["position"]]
        after.append(
            (await append(client, tokens, factories.export_rule(unique_id("rule"))))["position"]
        )
    signed = SignedCheckpoint(checkpoint.size, checkpoint.root, note, dt.datetime.now(dt.UTC))
    async with connected(db_url) as conn:
        answer = await proven.company(conn, signed, None, company, None, None)
    # then the answer is folded from the checkpoint's events only, and verifies
    assert answer is not None and answer.position == checkpoint.size
    positions = [event.position for event in answer.proof.events]
    assert positions == sorted(positions) and signed_position in positions
    assert max(positions) <= checkpoint.size < min(after)
    assert answer.valuation is not None and answer.valuation.value == "1000000000"
    verified.check_proof(answer.proof, key, answer.position)
