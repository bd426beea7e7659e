"""The notary hashes the leaves its own process commits without reading them back.

Leaves handed over by the group committer and leaves read from the log (appended by another
process) interleave; the stored tree must be the tree of the events as stored, either way.
"""

from __future__ import annotations

from pathlib import Path

from events.tree_check import verify_tree
from tests import factories
from tests.proof_support import checkpoint_at_least, signing_client
from tests.support import Tokens, append, client_for, connected, unique_id


async def test_the_tree_of_handed_over_and_read_leaves_matches_the_log(
    db_url: str, tokens: Tokens, tmp_path: Path
) -> None:
    async with (
        signing_client(db_url, tmp_path) as signing,
        client_for(db_url, notary=False) as other,
    ):
        for round_ in range(6):
            company = unique_id()
            registered = await append(signing, tokens, factories.company_registered(company))
            valued = await append(
                other,
                tokens,
                factories.valuation_reported(company, metadata={"note": f"round {round_}"}),
            )
            batch = {
                "events": [
                    factories.round_announced(company),
                    factories.corrected(
                        valued["event_id"],
                        factories.valuation_reported(company, value="2000000000")["data"],
                    ),
                    factories.valuation_reported(company, value="3000000000.50"),
                ]
            }
            receipts = await append(signing if round_ % 2 else other, tokens, batch)
            retraction = await append(signing, tokens, factories.retracted(registered["event_id"]))
            assert retraction["position"] == receipts["receipts"][-1]["position"] + 1
            position = retraction["position"]
            # a checkpoint between rounds, so that some rounds start on handed-over leaves
            # and some on leaves read from the log
            if round_ % 3 == 0:
                await checkpoint_at_least(signing, tokens, position)
        await checkpoint_at_least(signing, tokens, position)
    async with connected(db_url) as conn:
        report = await verify_tree(conn)
    assert report.checked == position
    assert report.intact, report
