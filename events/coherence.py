"""Facts that are well formed yet say something the ledger cannot honour: refused with 422.

Each rule names the field at fault, relative to the payload (``amount_usd``,
``valuation.currency``); the caller places it under ``data`` or ``data.data``.
"""

from __future__ import annotations

from events.codes import NOT_MONEY
from events.errors import FieldError, UnprocessableEventError
from events.vocabulary import Fact, Money, RoundAnnounced, ValuationReported


def check_coherent(payload: object, path: str) -> None:
    """Raise a 422 naming the first field of ``payload`` that contradicts the rest."""
    problems = contradictions(payload)
    if problems:
        errors = [FieldError(f"{path}.{e.field}", e.message) for e in problems]
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
        raise UnprocessableEventError(detail, errors)


def contradictions(payload: object) -> list[FieldError]:
    """Return what in ``payload`` contradicts itself or is not money, field by field."""
    if not isinstance(payload, Fact):
        return []
    found = [
        FieldError(f"{name}.currency", _not_money(money.currency))
        for name, money in _money_of(payload)
        if money.currency in NOT_MONEY
    ]
    return found


def _money_of(payload: Fact) -> list[tuple[str, Money]]:
    if isinstance(payload, RoundAnnounced):
        pairs = [("amount", payload.amount), ("post_money_valuation", payload.post_money_valuation)]
        return [(name, money) for name, money in pairs if money is not None]
    if isinstance(payload, ValuationReported):
        return [("valuation", payload.valuation)]
    return []


def _not_money(code: str) -> str:
    return (
        f"{code!r} is an ISO 4217 code that names no currency (XXX: none, XTS: testing); "
        "give the currency the amount was reported in"
    )
