"""The fast decoder (`gateway.complaints.decode`) against the one validator (`validate_record`): it accepts
nothing the validator refuses, and what it accepts it reads to the very same values and digest. Whatever it
does not accept goes to the validator, whose verdict and message stand (tests/ingest/test_fast_path.py)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.simulators import generate_records
from gateway.complaints.decode import DECODED_FIELDS, Decoded, Refused, decode_fast, decode_object, from_model
from gateway.complaints.records import ComplaintIn, validate_record
from tests.factories import event, record

VALID = [
    record(),
    record("NOHOT", channel="WEB", hotline=None, region_code=None, respondent=None, amount_involved=None,
           recovered_amount=None, events=[]),
    record("DUPEV", events=[event("a", "ACCEPTED", "2024-03-02T10:00:00+08:00"),
                            event("a", "REJECTED", "2024-03-03T10:00:00Z", {"reason": "x"})]),
    record("FRAC", received_at="2024-03-01T09:30:00.123456789-05:30", summary="tab\there\nnew line \\ back"),
    record("REPORT", kind="REPORT", events=[event("e", "EXTENDED", "2024-03-01T10:00:00+08:00", {"working_days": 3}),
                                            event("f", "CASE_FILED", "2024-03-09t10:00:00z", {"case_no": "粤-1"})]),
    record("DATA", events=[event("d", "TRANSFERRED", "2024-03-01T10:00:00+08:00",
                                 {"to": None, "department": "局", "extra": {"big": 2**70, "f": 1.5, "n": [None]}})]),
    *generate_records(60, seed=21),
]


def values(d: Decoded) -> dict[str, Any]:
    return {name: getattr(d, name) for name in Decoded.__slots__}


def test_every_field_of_the_record_is_decoded() -> None:
    assert set(ComplaintIn.model_fields) == DECODED_FIELDS


@pytest.mark.parametrize("raw", VALID, ids=lambda r: r["id"])
def test_valid_records_read_the_same(raw: dict[str, Any]) -> None:
    readings = [(decode_fast, text, validate_record(text))
                for text in (json.dumps(raw, ensure_ascii=False).encode(), json.dumps(raw))]  # UTF-8; \u escapes
    readings.append((decode_object, copy.deepcopy(raw), validate_record(raw)))
    for decode, arg, valid in readings:
        if raw["id"] == "DATA":  # an integer beyond 64 bits (orjson reads a float): the validator decides
            with pytest.raises(Refused):
                decode(arg)
            continue
        assert values(decode(arg)) == values(from_model(valid))


def test_the_digest_ignores_how_the_json_is_written() -> None:
    raw = record("DIG", amount_involved="12.50")
    spaced = json.dumps(raw, indent=2).encode()
    reordered = json.dumps(dict(reversed(list(raw.items())))).encode()
    assert decode_fast(spaced).digest == decode_fast(reordered).digest == from_model(validate_record(raw)).digest
    assert decode_fast(json.dumps(record("DIG", amount_involved="12.51")).encode()).digest != decode_fast(spaced).digest


@pytest.mark.parametrize("line", [
    b"", b"{not json", b"[1, 2]", b"null", b'"a string"', b"\xef\xbb\xbf" + json.dumps(record()).encode(),
    json.dumps(record()).encode() + b" trailing", json.dumps(record()).encode().replace(b"COMPLAINT", b"\xff"),
    json.dumps(record(), allow_nan=True).encode().replace(b'"1299.00"', b"NaN"),
])
def test_broken_json_is_left_to_the_validator(line: bytes) -> None:
    with pytest.raises(Refused):
        decode_fast(line)


# Values that break a rule somewhere, or nearly do.
ODD: list[Any] = [
    None, "", " ", 0, 1, -1, 1.5, True, False, [], {}, [None], "x" * 65, "x" * 4001, "ok", "HOTLINE", "12315",
    "COMPLAINT", "510802", "510802001", "5108020011", "510802\n", "٥١٠٨٠٢", "2024-03-01T09:30:00",
    "2024-03-01T09:30:00+08:00", "2024-03-01 09:30:00+08:00", "2024-02-30T09:30:00+08:00", "2024-03-01T09:30:00+0800",
    "2024-03-01T09:30:00.1234567890+08:00", "12.345", "1299.00", "-1.00", "007.5", "91110000802100433B",
    "91110000802100433A", "a\u0000b", "SATISFIED", "MEH", 365, 366, "A" * 129, 2**70,
]
PATHS = [
    ("id",), ("kind",), ("channel",), ("hotline",), ("urgency",), ("category",), ("received_at",),
    ("handling_unit",), ("region_code",), ("respondent",), ("respondent", "uscc"), ("respondent", "name"),
    ("complainant",), ("complainant", "name"), ("complainant", "phone"), ("complainant", "real_name"),
    ("summary",), ("amount_involved",), ("recovered_amount",), ("events",), ("events", 0), ("events", 0, "id"),
    ("events", 0, "type"), ("events", 0, "at"), ("events", 0, "unit"), ("events", 0, "data"),
    ("events", 1, "data", "satisfaction"), ("events", 1, "data", "working_days"), ("events", 1, "data", "to"),
    ("unknown",),
]
BASE = record("MUT", events=[event("m1", "ACCEPTED", "2024-03-02T10:00:00+08:00"),
                             event("m2", "CALLBACK", "2024-03-20T10:00:00+08:00", {"satisfaction": "SATISFIED"})])


def mutate(base: dict[str, Any], path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    raw = copy.deepcopy(base)
    target = raw
    for key in path[:-1]:
        if isinstance(target, dict) and key in target or isinstance(target, list) and key < len(target):
            target = target[key]
        else:
            return raw
    key = path[-1]
    if delete:
        if isinstance(target, dict):
            target.pop(key, None)
        elif isinstance(target, list) and key < len(target):
            target.pop(key)
    elif isinstance(target, dict) or isinstance(target, list) and key < len(target):
        target[key] = value
    return raw


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.sampled_from(PATHS), st.sampled_from(ODD), st.booleans()), min_size=1, max_size=3),
    st.sampled_from(["EXTENDED", "CALLBACK", "TRANSFERRED", "REJECTED", "CLOSED"]),
)
def test_accepts_only_what_the_validator_accepts(changes: list[tuple[Any, Any, bool]], second_type: str) -> None:
    raw: Any = copy.deepcopy(BASE)
    raw["events"][1]["type"] = second_type
    for path, value, delete in changes:
        raw = mutate(raw, path, value, delete)
    try:
        expected: dict[str, Any] | None = values(from_model(validate_record(raw)))
    except ValueError:
        expected = None
    text = json.dumps(raw).encode()
    try:
        from_text: dict[str, Any] | None = values(from_model(validate_record(text)))
    except ValueError:
        from_text = None
    for decode, arg, reference in ((decode_fast, text, from_text), (decode_object, copy.deepcopy(raw), expected)):
        try:
            got = values(decode(arg))
        except Refused:
            continue  # the validator decides
        assert reference is not None, f"{decode.__name__} accepted what the validator refuses: {raw}"
        assert got == reference
