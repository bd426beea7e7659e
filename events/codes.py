"""The real ISO code lists that currencies and jurisdictions are checked against."""

from __future__ import annotations

from functools import cache

import pycountry


@cache
def currency_codes() -> frozenset[str]:
    """Return the active ISO 4217 alphabetic currency codes."""
    return frozenset(c.alpha_3 for c in pycountry.currencies)


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
