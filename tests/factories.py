"""Valid envelopes for tests, built from the facts of the demo's sources."""

from __future__ import annotations

import uuid
from typing import Any

SOURCE = {"name": "South China Morning Post", "url": "https://www.scmp.com/tech"}


def company_registered(company_id: str, **overrides: Any) -> dict[str, Any]:
    """Return a company_registered envelope."""
    return {
        "event_id": str(uuid.uuid4()),
        "type": "company_registered",
        "effective_date": "2019-06-01",
        "source": SOURCE,
        "data": {"company_id": company_id, "name": "Zhipu AI", "jurisdiction": "CN"},
        **overrides,
    }


def valuation_reported(
    company_id: str, value: str = "1000000000", **overrides: Any
) -> dict[str, Any]:
    """Return a valuation_reported envelope."""
    return {
        "event_id": str(uuid.uuid4()),
        "type": "valuation_reported",
        "effective_date": "2023-09-15",
        "source": SOURCE,
        "data": {
            "company_id": company_id,
            "valuation": {"value": value, "currency": "USD"},
            "basis": "reported",
        },
        **overrides,
    }


def round_announced(company_id: str, **overrides: Any) -> dict[str, Any]:
    """Return a round_announced envelope."""
    return {
        "event_id": str(uuid.uuid4()),
        "type": "round_announced",
        "effective_date": "2023-10-20",
        "source": SOURCE,
        "data": {
            "company_id": company_id,
            "round_name": "2023 rounds",
            "amount": {"value": "2500000000", "currency": "CNY"},
            "amount_usd": "342000000",
            "investors": [
                {"investor_id": "alibaba", "name": "Alibaba"},
                {"investor_id": "tencent"},
            ],
        },
        **overrides,
    }


def export_rule(rule_id: str, **overrides: Any) -> dict[str, Any]:
    """Return an export_rule envelope."""
    return {
        "event_id": str(uuid.uuid4()),
        "type": "export_rule",
        "effective_date": "2022-10-07",
        "source": {"name": "Coinspeaker"},
        "data": {
            "rule_id": rule_id,
            "issuing_jurisdiction": "US",
            "authority": "BIS",
            "title": "Advanced computing chips",
            "action": "imposed",
            "restricted_items": ["A100", "H100"],
            "target_jurisdictions": ["CN"],
            "target_entities": [],
        },
        **overrides,
    }


def corrected(target_event_id: str, data: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """Return an event_corrected envelope replacing the target's payload."""
    return {
        "event_id": str(uuid.uuid4()),
        "type": "event_corrected",
        "effective_date": "2023-10-21",
        "source": SOURCE,
        "data": {"target_event_id": target_event_id, "data": data},
        **overrides,
    }


def retracted(target_event_id: str, **overrides: Any) -> dict[str, Any]:
    """Return an event_retracted envelope."""
    return {
        "event_id": str(uuid.uuid4()),
        "type": "event_retracted",
        "effective_date": "2023-10-21",
        "source": SOURCE,
        "data": {"target_event_id": target_event_id, "reason": "misreported"},
        **overrides,
    }
