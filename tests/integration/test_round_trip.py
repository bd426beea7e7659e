"""Property: any valid envelope posted over HTTP reads back with the same content.

"The same" is judged after decoding both sides with the vocabulary: an optional field sent
as null, or a flag sent as its default, is stored omitted, and both spellings decode alike.
One database and one running app serve every example; each example appends new events.
"""

from __future__ import annotations

import datetime as dt
import string
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pycountry
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient

from events.codes import NOT_MONEY
from events.decoding import decode_append_body
from events.vocabulary import AnyEnvelope
from tests.support import Tokens, client_for

COUNTRIES = sorted(country.alpha_2 for country in pycountry.countries)
CURRENCIES = sorted({c.alpha_3 for c in pycountry.currencies} - NOT_MONEY)

slugs = st.from_regex(r"[a-z0-9][a-z0-9-]{0,63}", fullmatch=True)
countries = st.sampled_from(COUNTRIES)
# Any character but U+0000, which PostgreSQL cannot store (the ledger refuses it with a 400).
chars = st.characters(codec="utf-8", exclude_characters="\x00")
texts = st.text(chars, min_size=1, max_size=60) | st.text(
    string.printable, min_size=490, max_size=500
)
urls = st.from_regex(r"https?://[^\s\x00]+", fullmatch=True).filter(lambda url: len(url) <= 2048)
dates = st.dates().map(dt.date.isoformat)
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))
instants = st.datetimes(
    min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=offsets
).map(dt.datetime.isoformat)


@st.composite
def decimals(draw: st.DrawFn) -> str:
    """Return a positive exact decimal string: up to 30 integer and 18 fraction digits."""
    whole = draw(st.integers(0, 10**30 - 1))
    fraction = draw(st.none() | st.from_regex(r"[0-9]{1,18}", fullmatch=True))
    if whole == 0 and not (fraction or "").strip("0"):
        whole = draw(st.integers(1, 10**30 - 1))
    return str(whole) if fraction is None else f"{whole}.{fraction}"


currencies = st.sampled_from(CURRENCIES)


def money(currency: st.SearchStrategy[str] = currencies) -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries({"value": decimals(), "currency": currency})


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(chars, max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(chars, max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
metadata = st.dictionaries(st.text(chars, max_size=16), json_values, max_size=32)

sources = st.fixed_dictionaries(
    {"name": texts},
    optional={"url": st.none() | urls, "published_at": st.none() | instants},
)

company_registered = st.fixed_dictionaries(
    {"company_id": slugs, "name": texts, "jurisdiction": countries},
    optional={"legal_name": st.none() | texts, "founded_on": st.none() | dates},
)

investors = st.lists(
    st.fixed_dictionaries(
        {"investor_id": slugs},
        optional={"name": st.none() | texts, "lead": st.booleans()},
    ),
    max_size=5,
    unique_by=lambda investor: investor["investor_id"],
)


@st.composite
def round_announced(draw: st.DrawFn) -> dict[str, Any]:
    data = draw(
        st.fixed_dictionaries(
            {
                "company_id": slugs,
                "round_name": texts,
                "amount": st.none() | money(st.sampled_from(["USD", *CURRENCIES])),
                "investors": investors,
            },
            optional={
                "amount_usd": st.none() | decimals(),
                "post_money_valuation": st.none() | money(),
            },
        )
    )
    amount = data["amount"]
    if amount is None:  # a USD figure needs an amount it stands for
        data.pop("amount_usd", None)
    elif amount["currency"] == "USD" and data.get("amount_usd") is not None:
        # a USD round's USD figure is its amount, possibly written with trailing zeros
        zeros = draw(st.sampled_from(["", ".0", ".000"])) if "." not in amount["value"] else ""
        data["amount_usd"] = amount["value"] + zeros
    return data


valuation_reported = st.fixed_dictionaries(
    {"company_id": slugs, "valuation": money()},
    optional={"basis": st.sampled_from([None, "post-money", "pre-money", "reported"])},
)

regulatory_approval = st.fixed_dictionaries(
    {
        "company_id": slugs,
        "jurisdiction": countries,
        "authority": texts,
        "scope": texts,
        "status": st.sampled_from(["granted", "revoked"]),
    },
    optional={"product": st.none() | texts},
)

export_rule = st.fixed_dictionaries(
    {
        "rule_id": slugs,
        "issuing_jurisdiction": countries,
        "authority": texts,
        "title": texts,
        "action": st.sampled_from(["imposed", "amended", "rescinded"]),
        "restricted_items": st.lists(texts, max_size=5),
        "target_jurisdictions": st.lists(countries, max_size=5),
        "target_entities": st.lists(slugs, max_size=5),
    }
)

PAYLOADS = {
    "company_registered": company_registered,
    "round_announced": round_announced(),
    "valuation_reported": valuation_reported,
    "regulatory_approval": regulatory_approval,
    "export_rule": export_rule,
}


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """Return a valid envelope of one of the fact types, without an event id."""
    event_type = draw(st.sampled_from(sorted(PAYLOADS)))
    return draw(
        st.fixed_dictionaries(
            {
                "type": st.just(event_type),
                "effective_date": dates,
                "source": sources,
                "data": PAYLOADS[event_type],
            },
            optional={"metadata": st.none() | metadata},
        )
    )


@pytest.fixture(scope="module")
async def client(shared_url: str) -> AsyncIterator[AsyncTestClient[Any]]:
    async with client_for(shared_url) as client:
        yield client


def decoded(envelope: dict[str, Any]) -> AnyEnvelope:
    [event], _ = decode_append_body(msgspec.json.encode(envelope))
    return event


def as_posted(shown: dict[str, Any]) -> dict[str, Any]:
    """Return the envelope fields of an event as the ledger shows it."""
    keys = ("event_id", "type", "effective_date", "source", "data", "metadata")
    return {key: shown[key] for key in keys if key in shown}


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(envelope=envelopes(), client_chooses_id=st.booleans())
async def test_a_posted_envelope_reads_back_with_the_same_content(
    client: AsyncTestClient[Any],
    shared_tokens: Tokens,
    envelope: dict[str, Any],
    client_chooses_id: bool,
) -> None:
    # given
    if client_chooses_id:
        envelope = {"event_id": str(uuid.uuid4()), **envelope}
    # when
    posted = await client.post("/events", json=envelope, headers=shared_tokens.header("write"))
    assert posted.status_code == 201, posted.text
    receipt = posted.json()
    response = await client.get(
        f"/events/{receipt['event_id']}", headers=shared_tokens.header("read")
    )
    # then
    assert response.status_code == 200, response.text
    shown = response.json()
    assert decoded(as_posted(shown)) == decoded({**envelope, "event_id": receipt["event_id"]})
    if client_chooses_id:
        assert receipt["event_id"] == envelope["event_id"]
    assert shown["type"] == envelope["type"]
    for key in ("stream", "stream_version", "position", "recorded_at", "hash"):
        assert shown[key] == receipt[key], key
    company_or_rule = envelope["data"].get("company_id") or envelope["data"]["rule_id"]
    assert receipt["stream"].endswith(f":{company_or_rule}")
    assert "metadata" not in shown or shown["metadata"] == envelope.get("metadata")
