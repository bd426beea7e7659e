"""The real ISO code lists that currencies and jurisdictions are checked against."""

from __future__ import annotations

from functools import cache

import pycountry


@cache
def currency_codes() -> frozenset[str]:
    """Return the active ISO 4217 alphabetic currency codes."""
    return frozenset(c.alpha_3 for c in pycountry.currencies)


# ISO 4217 codes that name no money at all: "no currency is involved" and the testing code.
# The other X codes (CFA francs, gold and the other metals, SDRs, units of account) are units
# amounts are stated in, and remain accepted.
NOT_MONEY = frozenset({"XXX", "XTS"})


@cache
def money_codes() -> frozenset[str]:
    """Return the ISO 4217 codes that money may be in: the currencies, less ``NOT_MONEY``."""
    return currency_codes() - NOT_MONEY


@cache
def country_codes() -> frozenset[str]:
    """Return the ISO 3166-1 alpha-2 country codes."""
    return frozenset(c.alpha_2 for c in pycountry.countries)


def check_currency(code: str, field: str) -> None:
    """Raise ValueError naming ``field`` when ``code`` is not an ISO 4217 currency."""
    if code not in currency_codes():
        raise ValueError(f"{field}: {code!r} is not an ISO 4217 currency code (e.g. 'USD', 'CNY')")


def check_country(code: str, field: str) -> None:
    """Raise ValueError naming ``field`` when ``code`` is not an ISO 3166-1 alpha-2 code."""
    if code not in country_codes():
        raise ValueError(f"{field}: {code!r} is not an ISO 3166-1 alpha-2 code (e.g. 'CN', 'US')")
