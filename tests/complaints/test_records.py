"""Validation of records.md: every rule with a bad example, each rejection naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.complaints.records import parse_instant, validate_record
from tests.factories import event, record


def reason(raw: Any) -> str:
    with pytest.raises(ValueError) as info:
        validate_record(raw)
    return str(info.value)


def test_valid_record_passes() -> None:
    rec = validate_record(record())
    assert rec.id == "C0001"
    assert str(rec.amount_involved) == "1299.00"
    assert rec.received_day.isoformat() == "2024-03-01"


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("id", "has space", "id:"),
        ("id", "x" * 65, "id:"),
        ("id", "", "id:"),
        ("kind", "PRAISE", "kind:"),
        ("channel", "FAX", "channel:"),
        ("hotline", "12345", "hotline:"),
        ("urgency", "HIGH", "urgency:"),
        ("category", "TOYS", "category:"),
        ("received_at", "2024-03-01T09:30:00", "received_at:"),  # no offset
        ("received_at", "2024-03-01", "received_at:"),
        ("received_at", 1709256600, "received_at:"),
        ("received_at", "2024-02-30T09:30:00+08:00", "received_at:"),
        ("handling_unit", "5108", "handling_unit:"),
        ("region_code", "999999", "region_code:"),
        ("region_code", "51080", "region_code:"),
        ("respondent", {"uscc": "91110000802100433A", "name": "x"}, "respondent.uscc:"),
        ("respondent", {"uscc": None}, "respondent.name:"),
        ("complainant", {"name": "x", "phone": None}, "complainant.real_name:"),
        ("complainant", {"name": "x", "phone": None, "real_name": "yes"}, "complainant.real_name:"),
        ("summary", "x" * 4001, "summary:"),
        ("amount_involved", 12.5, "amount_involved:"),
        ("amount_involved", "12.505", "amount_involved:"),
        ("recovered_amount", "-1.00", "recovered_amount:"),
        ("events", None, "events:"),
    ],
)
def test_each_rule_rejects_with_field_named(field: str, value: Any, expected: str) -> None:
    assert expected in reason(record(**{field: value}))


def test_missing_required_fields_are_named() -> None:
    raw = record()
    del raw["kind"], raw["complainant"]
    text = reason(raw)
    assert "kind: Field required" in text and "complainant: Field required" in text


def test_hotline_only_on_hotline_channel() -> None:
    assert "hotline:" in reason(record(channel="WEB", hotline="12315"))
    assert validate_record(record(channel="WEB", hotline=None)).hotline is None


@pytest.mark.parametrize(
    ("ev", "expected"),
    [
        (event("e", "SHOUTED", "2024-03-02T10:00:00+08:00"), "events.0.type:"),
        (event("e", "DISPATCHED", "2024-03-02T10:00:00+08:00", {}), "data.to"),
        (event("e", "DISPATCHED", "2024-03-02T10:00:00+08:00", {"to": "51"}), "data.to"),
        (event("e", "EXTENDED", "2024-03-02T10:00:00+08:00", {"working_days": "3"}), "data.working_days"),
        (event("e", "EXTENDED", "2024-03-02T10:00:00+08:00", {"working_days": 0}), "data.working_days"),
        (event("e", "CALLBACK", "2024-03-02T10:00:00+08:00", {"satisfaction": "HAPPY"}), "data.satisfaction"),
        (event("e", "CASE_FILED", "2024-03-02T10:00:00+08:00", {}), "data.case_no"),
        (event("e", "REJECTED", "2024-03-02T10:00:00+08:00", {}), "data.reason"),
        (event("e", "ACCEPTED", "2024-03-02 10:00:00"), "events.0.at:"),
        (event("", "ACCEPTED", "2024-03-02T10:00:00+08:00"), "events.0.id:"),
    ],
)
def test_event_rules(ev: dict[str, Any], expected: str) -> None:
    assert expected in reason(record(events=[ev]))


def test_duplicate_event_ids_in_one_record_are_stored_once() -> None:
    evs = [event("same", "ACCEPTED", "2024-03-02T10:00:00+08:00"), event("other", "REPLIED", "2024-03-02T11:00:00Z"),
           event("same", "CLOSED", "2024-03-03T10:00:00Z")]
    rec = validate_record(record(events=evs))
    assert [(e.id, e.type.value) for e in rec.events] == [("same", "CLOSED"), ("other", "REPLIED")]


def test_not_an_object() -> None:
    assert "JSON object" in reason([1, 2])


def test_timestamps() -> None:
    assert parse_instant("2024-03-01T01:30:00Z") == parse_instant("2024-03-01T09:30:00+08:00")
    assert parse_instant("2024-03-01T01:30:00.123456789Z").microsecond == 123456
    with pytest.raises(ValueError):
        parse_instant("2024-03-01T01:30:00+0800")


def test_respondent_and_money_optional() -> None:
    rec = validate_record(record(respondent=None, amount_involved=None, recovered_amount=None, region_code=None))
    assert rec.respondent is None and rec.amount_involved is None
    assert validate_record(record(respondent={"uscc": None, "name": "个体户"})).respondent is not None


def test_region_code_accepts_province_and_city_codes() -> None:
    assert validate_record(record(region_code="510000")).region_code == "510000"
    assert validate_record(record(region_code="510800")).region_code == "510800"


@pytest.mark.parametrize("key", ["\n", "a\rb", "\x1b[31m", "\u2028", "\x85", "\x00", "\ud800", "tab\there"])
def test_a_reason_is_one_printable_line_whatever_the_keys_hold(key: str) -> None:
    """Keys in event data reach the reason as part of the field path; any character that would break
    the line (or a terminal) is written as an escape, and the rest of the key is kept readable."""
    data = {"reason": "r", "extra": {key: {"x": "\x00"}}}
    bad = record(events=[event("e1", "REJECTED", "2024-03-05T09:00:00+08:00", data=data)])
    with pytest.raises(ValueError) as caught:
        validate_record(bad)
    reason = str(caught.value)
    assert reason.isprintable(), reason
    assert reason.startswith("events.0.data.extra.") and ("contains U+0000" in reason or "surrogate" in reason)
    assert all(ch in reason for ch in key if ch.isprintable())
