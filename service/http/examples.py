"""Examples for the OpenAPI document of the answers about reports: disputes and sources."""

from __future__ import annotations

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example

from service.schemas import CompanyDisputeList, SourcePage

_IE = {
    "event_id": "2b0c6c4e-8d11-4a7b-9a55-3f1e2d4c5b60",
    "name": "Interesting Engineering",
    "url": "https://interestingengineering.com/culture/zhipu-funding",
    "published_at": "2023-10-23T08:00:00Z",
    "recorded_at": "2023-10-24T09:00:01.000000Z",
}
_SCMP = {
    "event_id": "7f5d0a9e-3c2b-4e1f-8a6d-9b8c7d6e5f40",
    "name": "South China Morning Post",
    "url": "https://www.scmp.com/tech/big-tech/article/3239180",
    "published_at": "2023-10-21T08:00:00Z",
    "recorded_at": "2023-10-24T09:00:00.000000Z",
}

DISPUTES_EXAMPLE = {
    "company_id": "zhipu-ai",
    "facts": [
        {
            "kind": "round",
            "label": "2023 rounds",
            "event_id": _SCMP["event_id"],
            "effective_date": "2023-10-20",
            "fields": [
                {
                    "field": "amount_usd",
                    "value": "342000000",
                    "sources": [_SCMP],
                    "alternatives": [{"value": "341000000", "sources": [_IE]}],
                }
            ],
        }
    ],
    "as_of": "2023-12-31",
    "known_at": "2023-10-24T09:00:01.000000Z",
    "position": 9,
}

SOURCES_EXAMPLE = {
    "sources": [
        {"name": "Interesting Engineering", "reports": 1},
        {"name": "South China Morning Post", "reports": 3},
    ],
    "next_after": "South China Morning Post",
}

DISPUTES_RESPONSE = {
    200: ResponseSpec(
        data_container=CompanyDisputeList,
        description="the facts on which sources disagree, each disputed field with both sides",
        examples=[Example(summary="the raise, four sources against one", value=DISPUTES_EXAMPLE)],
    )
}
SOURCES_RESPONSE = {
    200: ResponseSpec(
        data_container=SourcePage,
        description="sources in name order, with how many reports each gave",
        examples=[Example(summary="a page of two (limit=2)", value=SOURCES_EXAMPLE)],
    )
}
