"""The vocabulary and its strict decoding, without a database or HTTP."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import msgspec
import pytest

from events.decoding import convert_payload, decode_append_body
from events.errors import InvalidEventError, MalformedRequestError
from events.vocabulary import (
    EVENT_TYPES,
    PAYLOAD_TYPES,
    CompanyRegistered,
    CompanyRegisteredEvent,
    EventCorrected,
    EventCorrectedEvent,
    EventRetracted,
    EventRetractedEvent,
    ExportRule,
    ExportRuleEvent,
    Money,
    RegulatoryApproval,
    RegulatoryApprovalEvent,
    ReportRanked,
    ReportRankedEvent,
    RoundAnnounced,
    RoundAnnouncedEvent,
    ValuationReported,
    ValuationReportedEvent,
    stream_of,
)
from tests import factories as f

TARGET = "6f1c1c1e-0000-4000-8000-000000000000"


def approval(company_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "regulatory_approval",
        "effective_date": "2023-08-31",
        "source": {"name": "CAC", "published_at": "2023-08-31T09:00:00+08:00"},
        "data": {
            "company_id": company_id,
            "jurisdiction": "CN",
            "authority": "Cyberspace Administration of China",
            "scope": "generative-ai",
            "product": "ChatGLM",
            "status": "granted",
        },
        **overrides,
    }


ENVELOPES = {
    "company_registered": f.company_registered("zhipu-ai"),
    "round_announced": f.round_announced("zhipu-ai"),
    "valuation_reported": f.valuation_reported("zhipu-ai"),
    "regulatory_approval": approval("zhipu-ai"),
    "export_rule": f.export_rule("advanced-computing"),
    "event_corrected": f.corrected(TARGET, f.valuation_reported("zhipu-ai")["data"]),
    "event_retracted": f.retracted(TARGET),
    "report_ranked": f.retracted(
        TARGET,
        type="report_ranked",
        data={"target_event_id": TARGET, "rank": "preferred", "reason": "the company's statement"},
    ),
}
CLASSES = {
    "company_registered": (CompanyRegisteredEvent, CompanyRegistered, "company:zhipu-ai"),
    "round_announced": (RoundAnnouncedEvent, RoundAnnounced, "company:zhipu-ai"),
    "valuation_reported": (ValuationReportedEvent, ValuationReported, "company:zhipu-ai"),
    "regulatory_approval": (RegulatoryApprovalEvent, RegulatoryApproval, "company:zhipu-ai"),
    "export_rule": (ExportRuleEvent, ExportRule, "export-rule:advanced-computing"),
    "event_corrected": (EventCorrectedEvent, EventCorrected, None),
    "event_retracted": (EventRetractedEvent, EventRetracted, None),
    "report_ranked": (ReportRankedEvent, ReportRanked, None),
}


def encode(value: Any) -> bytes:
    return json.dumps(value).encode()


def with_data(envelope: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**envelope, "data": {**envelope["data"], **changes}}


def error_of(body: Any) -> tuple[str, str]:
    """Decode ``body``, expecting one field error; return its field and message."""
    with pytest.raises(InvalidEventError) as caught:
        decode_append_body(body if isinstance(body, bytes) else encode(body))
    assert len(caught.value.errors) == 1, caught.value.errors
    error = caught.value.errors[0]
    assert caught.value.detail.startswith(f"{error.field}: "), caught.value.detail
    return error.field, error.message


# every type decodes


def test_the_vocabulary_has_eight_types() -> None:
    assert set(EVENT_TYPES) == set(ENVELOPES) == set(PAYLOAD_TYPES)


@pytest.mark.parametrize("event_type", list(ENVELOPES))
def test_each_type_decodes_to_its_envelope_and_payload(event_type: str) -> None:
    # given
    envelope = ENVELOPES[event_type]
    envelope_class, payload_class, stream = CLASSES[event_type]
    # when
    decoded, is_batch = decode_append_body(encode(envelope))
    # then
    assert not is_batch
    [event] = decoded
    assert type(event) is envelope_class
    assert type(event.data) is payload_class
    assert event.type == event_type
    assert event.event_id == uuid.UUID(envelope["event_id"])
    assert event.effective_date == dt.date.fromisoformat(envelope["effective_date"])
    assert stream_of(event) == stream
    assert msgspec.to_builtins(event.data) == msgspec.to_builtins(
        msgspec.convert(envelope["data"], payload_class)
    )


@pytest.mark.parametrize("event_type", list(ENVELOPES))
def test_each_type_survives_an_encode_decode_round_trip(event_type: str) -> None:
    # given
    [event], _ = decode_append_body(encode(ENVELOPES[event_type]))
    # when
    [again], _ = decode_append_body(msgspec.json.encode(event))
    # then
    assert again == event


def test_a_batch_decodes_every_type_in_order() -> None:
    # given
    body = {"events": list(ENVELOPES.values())}
    # when
    decoded, is_batch = decode_append_body(encode(body))
    # then
    assert is_batch
    assert [event.type for event in decoded] == list(ENVELOPES)


def test_optional_fields_may_be_absent_or_null() -> None:
    # given
    minimal = {
        "type": "round_announced",
        "effective_date": "2023-10-20",
        "source": {"name": "SCMP"},
        "data": {"company_id": "zhipu-ai", "round_name": "B", "amount": None, "investors": []},
    }
    explicit = {
        **minimal,
        "event_id": None,
        "expected_version": None,
        "metadata": None,
        "source": {"name": "SCMP", "url": None, "published_at": None},
        "data": {**minimal["data"], "amount_usd": None, "post_money_valuation": None},
    }
    # when
    [short], _ = decode_append_body(encode(minimal))
    [long], _ = decode_append_body(encode(explicit))
    # then
    assert short == long
    assert short.event_id is None and short.data.amount is None
    assert msgspec.json.decode(msgspec.json.encode(short.data)) == minimal["data"]


def test_instants_keep_their_offset_and_dates_are_real_leap_days() -> None:
    # given
    envelope = approval("zhipu-ai", effective_date="2024-02-29")
    # when
    [event], _ = decode_append_body(encode(envelope))
    # then
    assert event.effective_date == dt.date(2024, 2, 29)
    published = event.source.published_at
    assert published == dt.datetime(2023, 8, 31, 1, 0, tzinfo=dt.UTC)
    assert published.utcoffset() == dt.timedelta(hours=8)


# errors name the field


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**ENVELOPES["company_registered"], "type": "company_renamed"}, "type"),
        (with_data(ENVELOPES["company_registered"], jurisdiction="ZZ"), "data.jurisdiction"),
        (with_data(ENVELOPES["company_registered"], company_id="Zhipu"), "data.company_id"),
        (
            with_data(ENVELOPES["round_announced"], amount={"value": "1", "currency": "ABC"}),
            "data.amount.currency",
        ),
        (
            with_data(ENVELOPES["round_announced"], investors=[{"investor_id": "a", "lead": 1}]),
            "data.investors[0].lead",
        ),
        (
            with_data(ENVELOPES["export_rule"], target_jurisdictions=["US", "CN", "QQ"]),
            "data.target_jurisdictions[2]",
        ),
        (
            with_data(ENVELOPES["export_rule"], target_entities=["ok", "Not Ok"]),
            "data.target_entities[1]",
        ),
        (
            with_data(ENVELOPES["export_rule"], issuing_jurisdiction="XX"),
            "data.issuing_jurisdiction",
        ),
        (with_data(ENVELOPES["regulatory_approval"], status="pending"), "data.status"),
        (with_data(ENVELOPES["event_retracted"], target_event_id="nope"), "data.target_event_id"),
        (with_data(ENVELOPES["event_retracted"], reason=""), "data.reason"),
        (
            {**ENVELOPES["company_registered"], "source": {"name": "x", "published_at": "soon"}},
            "source.published_at",
        ),
        ({**ENVELOPES["company_registered"], "expected_version": -1}, "expected_version"),
        (
            {"events": [ENVELOPES["company_registered"], {**ENVELOPES["export_rule"], "data": 1}]},
            "events[1].data",
        ),
        ([ENVELOPES["company_registered"]], "body"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_errors_name_the_field_path(body: Any, field: str) -> None:
    assert error_of(body)[0] == field


def test_an_unknown_type_error_lists_the_known_types() -> None:
    field, message = error_of({**ENVELOPES["company_registered"], "type": "company_renamed"})
    assert field == "type"
    assert "company_renamed" in message
    assert all(event_type in message for event_type in EVENT_TYPES)


def test_an_invalid_item_of_a_batch_is_named_by_its_index() -> None:
    # given
    bad = with_data(ENVELOPES["round_announced"], amount={"value": 5.0, "currency": "USD"})
    body = {"events": [ENVELOPES["company_registered"], ENVELOPES["valuation_reported"], bad]}
    # when
    field, message = error_of(body)
    # then
    assert field == "events[2].data.amount.value"
    assert "decimals are written as strings" in message


def test_a_replacement_payload_is_checked_against_the_target_type_under_its_path() -> None:
    # given
    replacement = {**ENVELOPES["valuation_reported"]["data"], "valuation": {"value": 1.5}}
    # when
    with pytest.raises(InvalidEventError) as caught:
        convert_payload("valuation_reported", replacement, "data.data")
    # then
    assert [e.field for e in caught.value.errors] == ["data.data.valuation.value"]


DEEP = b'{"metadata": {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b'{"type": "company_registered",}', b"\xff\xfe"],
    ids=["empty", "truncated", "trailing-comma", "not-utf8"],
)
def test_a_body_that_is_not_json_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedRequestError):
        decode_append_body(body)


def test_a_body_nested_too_deeply_names_the_field() -> None:
    with pytest.raises(InvalidEventError) as caught:
        decode_append_body(DEEP)
    assert [e.field for e in caught.value.errors] == ["metadata"]


def test_invalid_utf8_inside_a_string_is_malformed() -> None:
    body = encode(ENVELOPES["company_registered"])[:-1] + b', "metadata": {"a": "\xc3\x28"}}'
    with pytest.raises(MalformedRequestError):
        decode_append_body(body)


# strictness


@pytest.mark.parametrize("value", [1.5, 1500, 1e9, True, None])
def test_money_must_be_a_decimal_string(value: Any) -> None:
    body = with_data(ENVELOPES["valuation_reported"], valuation={"value": value, "currency": "USD"})
    field, message = error_of(body)
    assert field == "data.valuation.value"
    if isinstance(value, float | int) and not isinstance(value, bool):
        assert "decimals are written as strings" in message


@pytest.mark.parametrize("amount_usd", [342000000, 342000000.0])
def test_amount_usd_must_be_a_decimal_string(amount_usd: Any) -> None:
    field, message = error_of(with_data(ENVELOPES["round_announced"], amount_usd=amount_usd))
    assert field == "data.amount_usd"
    assert "decimals are written as strings" in message


@pytest.mark.parametrize(
    "value",
    [
        "1",
        "0.5",
        "341.5",
        "2500000000",
        "0.000000000000000001",
        "9" * 30,
        "9" * 30 + "." + "9" * 18,
    ],
)
def test_positive_exact_decimals_are_accepted(value: str) -> None:
    body = with_data(ENVELOPES["valuation_reported"], valuation={"value": value, "currency": "USD"})
    [event], _ = decode_append_body(encode(body))
    assert event.data.valuation == Money(value=value, currency="USD")


@pytest.mark.parametrize(
    "value",
    [
        "0",
        "0.0",
        "00",
        "-1",
        "+1",
        "01",
        "1.",
        ".5",
        "1e5",
        "1E5",
        "1,000",
        "1_000",
        " 1",
        "1 ",
        "1\n",
        "NaN",
        "Infinity",
        "",
        "9" * 31,
        "1." + "0" * 19,
    ],
)
def test_zero_negative_and_inexact_decimals_are_rejected(value: str) -> None:
    body = with_data(ENVELOPES["valuation_reported"], valuation={"value": value, "currency": "USD"})
    assert error_of(body)[0] == "data.valuation.value"


@pytest.mark.parametrize("code", ["ABC", "usd", "US", "USDX", "USD\n", ""])
def test_currencies_must_be_iso_4217(code: str) -> None:
    body = with_data(ENVELOPES["valuation_reported"], valuation={"value": "1", "currency": code})
    assert error_of(body)[0] == "data.valuation.currency"


@pytest.mark.parametrize("code", ["USD", "CNY", "EUR", "JPY", "XAU"])
def test_real_currencies_are_accepted(code: str) -> None:
    body = with_data(ENVELOPES["valuation_reported"], valuation={"value": "1", "currency": code})
    [event], _ = decode_append_body(encode(body))
    assert event.data.valuation.currency == code


@pytest.mark.parametrize("code", ["ZZ", "XX", "cn", "CHN", "C", "CN\n", ""])
def test_jurisdictions_must_be_iso_3166_alpha_2(code: str) -> None:
    body = with_data(ENVELOPES["company_registered"], jurisdiction=code)
    assert error_of(body)[0] == "data.jurisdiction"


@pytest.mark.parametrize(
    "slug", ["Zhipu", "-zhipu", "zhipu_ai", "zhipu ai", "a" * 65, "", "zhipu\n", "zhípu"]
)
def test_ids_must_be_slugs(slug: str) -> None:
    body = with_data(ENVELOPES["company_registered"], company_id=slug)
    assert error_of(body)[0] == "data.company_id"


@pytest.mark.parametrize("slug", ["a", "0", "zhipu-ai", "a" * 64, "a-", "01-ai"])
def test_slugs_up_to_64_characters_are_accepted(slug: str) -> None:
    body = with_data(ENVELOPES["company_registered"], company_id=slug)
    [event], _ = decode_append_body(encode(body))
    assert stream_of(event) == f"company:{slug}"


@pytest.mark.parametrize("url", ["ftp://x.org", "www.x.org", "https://", "https://x.org/a b"])
def test_source_urls_must_be_http(url: str) -> None:
    body = {**ENVELOPES["company_registered"], "source": {"name": "x", "url": url}}
    assert error_of(body)[0] == "source.url"


@pytest.mark.parametrize(
    ("where", "body"),
    [
        ("extra", {**ENVELOPES["company_registered"], "extra": 1}),
        ("data.extra", with_data(ENVELOPES["company_registered"], extra=1)),
        ("source.extra", {**ENVELOPES["company_registered"], "source": {"name": "x", "extra": 1}}),
        (
            "data.amount.extra",
            with_data(
                ENVELOPES["round_announced"], amount={"value": "1", "currency": "CNY", "extra": 1}
            ),
        ),
        (
            "data.investors[0].extra",
            with_data(ENVELOPES["round_announced"], investors=[{"investor_id": "a", "extra": 1}]),
        ),
        ("extra", {"events": [ENVELOPES["company_registered"]], "extra": 1}),
    ],
)
def test_unknown_fields_are_rejected(where: str, body: dict[str, Any]) -> None:
    field, message = error_of(body)
    assert field == where
    assert "unknown field" in message


@pytest.mark.parametrize(
    "date",
    ["2023-02-29", "2023-02-30", "2023-04-31", "2023-13-01", "2023-00-10", "23-10-20", "20231020"],
)
def test_dates_must_be_real_calendar_dates(date: str) -> None:
    assert (
        error_of({**ENVELOPES["company_registered"], "effective_date": date})[0] == "effective_date"
    )
    body = with_data(ENVELOPES["company_registered"], founded_on=date)
    assert error_of(body)[0] == "data.founded_on"


@pytest.mark.parametrize("instant", ["2023-10-21T08:00:00", "2023-10-21", "2023-10-21T25:00:00Z"])
def test_instants_need_an_offset_and_a_real_time(instant: str) -> None:
    body = {**ENVELOPES["company_registered"], "source": {"name": "x", "published_at": instant}}
    assert error_of(body)[0] == "source.published_at"


def test_booleans_are_not_coerced_from_strings_or_numbers() -> None:
    for lead in ["true", 1]:
        body = with_data(
            ENVELOPES["round_announced"], investors=[{"investor_id": "a", "lead": lead}]
        )
        assert error_of(body)[0] == "data.investors[0].lead"


def test_metadata_is_a_small_object() -> None:
    ok = {
        **ENVELOPES["company_registered"],
        "metadata": {"correlation_id": "abc", "n": [1, {"x": None}]},
    }
    [event], _ = decode_append_body(encode(ok))
    assert event.metadata == {"correlation_id": "abc", "n": [1, {"x": None}]}
    too_many = {**ENVELOPES["company_registered"], "metadata": {str(i): i for i in range(33)}}
    assert error_of(too_many)[0] == "metadata"
    assert error_of({**ENVELOPES["company_registered"], "metadata": "x"})[0] == "metadata"


@pytest.mark.parametrize(("batch_size", "ok"), [(0, False), (1, True), (1000, True), (1001, False)])
def test_a_batch_holds_one_to_a_thousand_events(batch_size: int, ok: bool) -> None:
    body = encode({"events": [ENVELOPES["company_registered"]] * batch_size})
    if ok:
        decoded, is_batch = decode_append_body(body)
        assert is_batch and len(decoded) == batch_size
    else:
        assert error_of(body)[0] == "events"


# rules across fields


def test_amount_usd_must_equal_the_amount_of_a_usd_round() -> None:
    # given
    usd = with_data(ENVELOPES["round_announced"], amount={"value": "400000000", "currency": "USD"})
    # when
    field, message = error_of(with_data(usd, amount_usd="342000000"))
    # then
    assert field == "data.amount_usd"
    assert "USD" in message


@pytest.mark.parametrize("amount_usd", ["400000000", "400000000.00", None])
def test_amount_usd_equal_to_a_usd_amount_or_absent_is_accepted(amount_usd: str | None) -> None:
    body = with_data(
        ENVELOPES["round_announced"],
        amount={"value": "400000000", "currency": "USD"},
        amount_usd=amount_usd,
    )
    [event], _ = decode_append_body(encode(body))
    assert event.data.amount_usd == amount_usd


def test_amount_usd_of_a_round_in_another_currency_is_free() -> None:
    body = with_data(ENVELOPES["round_announced"], amount_usd="1")
    [event], _ = decode_append_body(encode(body))
    assert (event.data.amount.currency, event.data.amount_usd) == ("CNY", "1")


def test_an_undisclosed_round_may_carry_no_usd_figure() -> None:
    body = with_data(ENVELOPES["round_announced"], amount=None, amount_usd=None)
    [event], _ = decode_append_body(encode(body))
    assert event.data.amount is None


def test_an_investor_listed_twice_is_rejected() -> None:
    # given
    investors = [
        {"investor_id": "alibaba"},
        {"investor_id": "tencent"},
        {"investor_id": "alibaba", "lead": True},
    ]
    # when
    field, message = error_of(with_data(ENVELOPES["round_announced"], investors=investors))
    # then
    assert field == "data.investors[2].investor_id"
    assert "alibaba" in message and "twice" in message


def test_a_batch_item_listing_an_investor_twice_is_named_by_its_index() -> None:
    twice = with_data(
        ENVELOPES["round_announced"], investors=[{"investor_id": "a"}, {"investor_id": "a"}]
    )
    body = {"events": [ENVELOPES["company_registered"], twice]}
    assert error_of(body)[0] == "events[1].data.investors[1].investor_id"


def test_struct_construction_applies_the_same_checks() -> None:
    with pytest.raises(ValueError, match="ISO 4217"):
        Money(value="1", currency="ABC")
    with pytest.raises(ValueError, match="twice"):
        msgspec.convert(
            {
                "company_id": "a",
                "round_name": "A",
                "amount": None,
                "investors": [{"investor_id": "x"}, {"investor_id": "x"}],
            },
            RoundAnnounced,
        )


@pytest.mark.parametrize("event_type", list(ENVELOPES))
def test_decoded_facts_are_immutable(event_type: str) -> None:
    [event], _ = decode_append_body(encode(ENVELOPES[event_type]))
    with pytest.raises(AttributeError):
        event.effective_date = dt.date(2000, 1, 1)  # type: ignore[misc]
    with pytest.raises(AttributeError):
        event.data.target_event_id = None  # type: ignore[union-attr]
