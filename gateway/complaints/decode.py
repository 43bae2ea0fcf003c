"""Fast decoding of records.md records from JSON bytes: the rules of `records.ComplaintIn`, a tenth the cost.

Bulk loads decode millions of records; `ComplaintIn` (pydantic with Python validators) takes ~80 µs a
record, this ~15 µs: msgspec decodes and type-checks the JSON in C, and the checks pydantic runs in Python
are called directly, with the very same functions (`gateway.core.time.parse_instant`, `records.check_event_data`, the
same regular expressions). It is an accelerator, not a second validator: anything it does not accept
outright goes to `ComplaintIn`, whose verdict and message stand (`decode_record`). So it accepts no record
that `ComplaintIn` rejects, and for the records it accepts it yields the same values
(tests/complaints/test_decode.py compares the two on valid and broken records).

The result, `Decoded`, is the record as the store writes it: codes and enumerations as strings, instants as
aware datetimes, money in cents, events de-duplicated by id (the last copy in the first one's place) and
also sorted by `at` (ties as given), and `digest`, the content hash that tells an unchanged record from a
changed one (`content_digest`, also computed from a `ComplaintIn`).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime
from typing import Any, Literal

import msgspec
import orjson

from gateway.complaints import records as R
from gateway.complaints.records import (
    DATA_MAX_DEPTH,
    Category,
    Channel,
    ComplaintIn,
    EventType,
    Hotline,
    Kind,
    Urgency,
    check_event_data,
    text_and_numbers,
)
from gateway.core.money import money_to_cents
from gateway.core.time import parse_instant, shanghai_date


def _literal(values: type[Any]) -> Any:
    return Literal.__getitem__(tuple(v.value for v in values))  # type: ignore[attr-defined]


_MISSING: Any = msgspec.UNSET


# Unknown fields are refused here (the validator ignores them, but looks into them for text and numbers it
# cannot hold, which msgspec would skip unread): such rare records go to the validator.
class _Event(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    type: _literal(EventType)  # type: ignore[valid-type]
    at: str
    unit: str | None = None
    data: dict[str, Any] = msgspec.field(default_factory=dict)


class _Respondent(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    uscc: str | None = None


class _Complainant(msgspec.Struct, forbid_unknown_fields=True):
    real_name: bool
    name: str | None = None
    phone: str | None = None


class _Record(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    kind: _literal(Kind)  # type: ignore[valid-type]
    channel: _literal(Channel)  # type: ignore[valid-type]
    urgency: _literal(Urgency)  # type: ignore[valid-type]
    category: _literal(Category)  # type: ignore[valid-type]
    received_at: str
    handling_unit: str
    complainant: _Complainant
    summary: str
    events: list[_Event]
    hotline: _literal(Hotline) | None = None  # type: ignore[valid-type]
    region_code: str | None = None
    respondent: _Respondent | None = None
    amount_involved: str | None = None
    recovered_amount: str | None = None
    updated_at: str | None = None


# Every field of ComplaintIn must be decoded here too (a test holds the two lists together).
DECODED_FIELDS = frozenset(_Record.__struct_fields__)

_decoder = msgspec.json.Decoder(_Record)
_EVENT_TYPES = {t.value: t for t in EventType}
_SIX_DIGITS = re.compile(r"\d{6}").fullmatch  # as records._region_code checks it


class Refused(Exception):
    """Not accepted by the fast decoder: `ComplaintIn` decides, and names the reason."""


# An event as stored: (id, type, at, unit, data)
EventTuple = tuple[str, str, datetime, str | None, dict[str, Any]]


class Decoded:
    """A valid record, normalised as the store writes it."""

    __slots__ = (
        "id", "kind", "channel", "hotline", "urgency", "category", "received_at", "received_day",
        "handling_unit", "region_code", "respondent_uscc", "respondent_name", "complainant_name",
        "complainant_phone", "real_name", "summary", "amount_cents", "recovered_cents", "updated_at", "events",
        "digest",
    )

    id: str
    kind: str
    channel: str
    hotline: str | None
    urgency: str
    category: str
    received_at: datetime
    received_day: date
    handling_unit: str
    region_code: str | None
    respondent_uscc: str | None
    respondent_name: str | None
    complainant_name: str | None
    complainant_phone: str | None
    real_name: bool
    summary: str
    amount_cents: int | None
    recovered_cents: int | None
    updated_at: datetime | None  # the record's version (records.md 1.1)
    events: list[EventTuple]  # de-duplicated, in the order given
    digest: str

    def sorted_events(self) -> list[EventTuple]:
        """Events in `at` order; ties keep the order given (sorted() is stable)."""
        return sorted(self.events, key=_at)


def _at(ev: EventTuple) -> datetime:
    return ev[2]


def content_digest(values: tuple[Any, ...]) -> str:
    """SHA-256 of a record's normalised values (`_canonical`): equal for equal records, whatever way they
    came in and however their JSON was written."""
    try:
        text = orjson.dumps(values)
    except TypeError:  # an integer beyond 64 bits in an event's data: the json module writes those
        text = json.dumps(values, default=datetime.isoformat, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.sha256(text).hexdigest()


def _canonical(d: Decoded) -> tuple[Any, ...]:
    return (
        d.id, d.kind, d.channel, d.hotline, d.urgency, d.category, d.received_at, d.handling_unit,
        d.region_code, d.respondent_uscc, d.respondent_name, d.complainant_name, d.complainant_phone,
        d.real_name, d.summary, d.amount_cents, d.recovered_cents, d.updated_at,
        d.events,
    )


def _money(value: str | None) -> int | None:
    return None if value is None else money_to_cents(R._decimal(value))


def _unit(value: str) -> str:
    if not R._UNIT_CODE.match(value):
        raise Refused
    return value


def decode_fast(line: bytes | str) -> Decoded:
    """The record in `line` (one JSON object), or Refused. Checks everything but the unit tree.

    msgspec refuses what orjson refuses (invalid UTF-8, unpaired surrogates, NaN, numbers beyond a double),
    so of records.md's text rules (1.1) only U+0000 is left to look for: any "\\u0000" escape goes to the
    validator (a NUL byte itself is not JSON)."""
    if b"\\u0000" in line if isinstance(line, bytes) else "\\u0000" in line:
        raise Refused
    try:
        raw = _decoder.decode(line)
    except (msgspec.ValidationError, msgspec.DecodeError):
        raise Refused from None
    return _checked(raw)


def decode_object(value: Any) -> Decoded:
    """The record in a decoded JSON value (a dict), or Refused. Checks everything but the unit tree."""
    try:
        text_and_numbers(value, data_at=4)
        raw = msgspec.convert(value, _Record)
    except (ValueError, msgspec.ValidationError):
        raise Refused from None
    return _checked(raw)


def _plain_data(data: dict[str, Any] | list[Any], depth: int = 1) -> None:
    """Refused unless `data` nests at most DATA_MAX_DEPTH levels and holds no integer beyond 64 bits (which
    orjson, the validator's parser, reads as a float)."""
    if depth > DATA_MAX_DEPTH:
        raise Refused
    for value in data.values() if isinstance(data, dict) else data:
        if isinstance(value, dict | list):
            _plain_data(value, depth + 1)
        elif type(value) is int and not _INT64_MIN <= value <= _UINT64_MAX:
            raise Refused


_INT64_MIN, _UINT64_MAX = -(1 << 63), (1 << 64) - 1


def _checked(raw: _Record) -> Decoded:
    if not R._RECORD_ID.match(raw.id):
        raise Refused
    if raw.hotline is not None and raw.channel != "HOTLINE":
        raise Refused
    d = Decoded()
    d.id = raw.id
    d.kind, d.channel, d.hotline, d.urgency, d.category = raw.kind, raw.channel, raw.hotline, raw.urgency, raw.category
    try:
        d.received_at = parse_instant(raw.received_at)
        d.received_day = shanghai_date(d.received_at)
        d.handling_unit = _unit(raw.handling_unit)
        region = raw.region_code
        if region is not None and (not _SIX_DIGITS(region) or region not in R._division_codes()):
            raise Refused
        d.region_code = region
        resp = raw.respondent
        if resp is None:
            d.respondent_uscc = d.respondent_name = None
        else:
            if not 1 <= len(resp.name) <= 500 or (resp.uscc is not None and not R._uscc_ok(resp.uscc)):
                raise Refused
            d.respondent_uscc, d.respondent_name = resp.uscc, resp.name
        person = raw.complainant
        if person.name is not None and len(person.name) > 200:
            raise Refused
        if person.phone is not None and len(person.phone) > 40:
            raise Refused
        d.complainant_name, d.complainant_phone, d.real_name = person.name, person.phone, person.real_name
        if len(raw.summary) > 4000:
            raise Refused
        d.summary = raw.summary
        d.amount_cents = _money(raw.amount_involved)
        d.recovered_cents = _money(raw.recovered_amount)
        d.updated_at = None if raw.updated_at is None else parse_instant(raw.updated_at)
        events: dict[str, EventTuple] = {}
        for ev in raw.events:
            if not 1 <= len(ev.id) <= 128:
                raise Refused
            unit = ev.unit
            if unit is not None:
                _unit(unit)
            if ev.data:
                _plain_data(ev.data)
            check_event_data(_EVENT_TYPES[ev.type], ev.data)
            events[ev.id] = (ev.id, ev.type, parse_instant(ev.at), unit, ev.data)
    except ValueError:
        raise Refused from None
    d.events = list(events.values())
    d.digest = content_digest(_canonical(d))
    return d


def from_model(record: ComplaintIn) -> Decoded:
    """A record validated by `ComplaintIn`, normalised like `decode_fast` normalises (digest included)."""
    d = Decoded()
    d.id = record.id
    d.kind, d.channel = record.kind.value, record.channel.value
    d.hotline = record.hotline.value if record.hotline is not None else None
    d.urgency, d.category = record.urgency.value, record.category.value
    d.received_at, d.received_day = record.received_at, record.received_day
    d.handling_unit, d.region_code = record.handling_unit, record.region_code
    resp = record.respondent
    d.respondent_uscc, d.respondent_name = (resp.uscc, resp.name) if resp is not None else (None, None)
    person = record.complainant
    d.complainant_name, d.complainant_phone, d.real_name = person.name, person.phone, person.real_name
    d.summary = record.summary
    d.amount_cents = money_to_cents(record.amount_involved)
    d.recovered_cents = money_to_cents(record.recovered_amount)
    d.updated_at = record.updated_at
    d.events = [(ev.id, ev.type.value, ev.at, ev.unit, ev.data) for ev in record.events]
    d.digest = content_digest(_canonical(d))
    return d
