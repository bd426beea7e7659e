"""An answer never reflects less of the log than the ``min_position`` it was asked for."""

from __future__ import annotations

from tests import factories
from tests.support import Tokens, append, client_for, unique_id


async def test_an_answer_known_before_the_position_asked_for_is_refused(
    db_url: str, tokens: Tokens
) -> None:
    async with client_for(db_url) as client:
        # given a company, then its valuation
        company = unique_id()
        first = await append(client, tokens, factories.company_registered(company))
        investor = unique_id("inv")
        funding = factories.round_announced(company)
        funding["data"]["investors"] = [{"investor_id": investor}]
        await append(client, tokens, funding)
        second = await append(client, tokens, factories.valuation_reported(company))

        # when each query asks to reflect the valuation as known before it was recorded
        asked = {"known_at": first["recorded_at"], "min_position": second["position"]}
        paths = [
            f"/companies/{company}",
            f"/companies/{company}/valuations",
            "/companies",
            f"/investors/{investor}/portfolio",
            "/export-rules",
        ]
        refused = [await client.get(p, params=asked, headers=tokens.header()) for p in paths]
        # and as known now
        now = {"min_position": second["position"]}
        answered = [await client.get(p, params=now, headers=tokens.header()) for p in paths]

    # then the first are refused naming known_at, and the others reflect the valuation
    for path, answer in zip(paths, refused, strict=True):
        assert answer.status_code == 422, (path, answer.text)
        assert answer.json()["errors"][0]["field"] == "known_at", path
    for path, answer in zip(paths, answered, strict=True):
        assert answer.status_code == 200, (path, answer.text)
        assert answer.json()["position"] >= second["position"], path
        assert answer.json()["known_at"] >= second["recorded_at"], path
