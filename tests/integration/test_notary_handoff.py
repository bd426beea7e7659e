"""The notary hashes the leaves its own process commits without reading them back.

Leaves handed over by the group committer and leaves read from the log (appended by another
process) interleave; the stored tree must be the tree of the events as stored, either way.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

from events.tree_check import verify_tree
from tests import factories
from tests.proof_support import checkpoint_at_least, signing_client
from tests.support import Tokens, append, client_for, connected, unique_id


async def _leaves(client: AsyncTestClient[Any]) -> dict[str, float]:
    """The leaves this process's notary added to the tree, by what it hashed them from."""
    text = (await client.get("/metrics")).text
    found = re.findall(r'^ledger_tree_leaves_total\{source="(\w+)"\} (\S+)$', text, re.M)
    return {source: float(count) for source, count in found}


async def test_the_tree_of_handed_over_and_read_leaves_matches_the_log(
    db_url: str, tokens: Tokens, tmp_path: Path
) -> None:
    async with (
        signing_client(db_url, tmp_path) as signing,
        client_for(db_url, notary=False) as other,
    ):
        before = await _leaves(signing)
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
        after = await _leaves(signing)
    async with connected(db_url) as conn:
        report = await verify_tree(conn)
    assert report.checked == position
    assert report.intact, report
    # this notary built the whole tree, some of it from leaves handed over (the other
    # process's events it could only read)
    added = {source: after[source] - before.get(source, 0.0) for source in after}
    assert added["handed_over"] > 0 and added["read"] > 0
    assert added["handed_over"] + added["read"] == position
