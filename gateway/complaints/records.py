"""The unified complaint record of records.md, validated in one place.

`ComplaintIn` checks everything that can be checked from the record alone; `validate_record`, the one way
every record is validated (import, push, sync), also checks that its handling unit exists when given the
unit tree. Each rejection names the field and the reason. Text and numbers (records.md 1.1) are checked
first, over the whole record as received, whichever way it came in (a file, a push, a sync page,
`recordEvent`): no U+0000, no unpaired surrogate, finite numbers, an event's `data` at most DATA_MAX_DEPTH
levels deep (`gateway.core.jsontext`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from stdnum.cn import uscc as stdnum_uscc

from gateway.core.jsontext import JSONInputError, Path, decode, dotted, printable, problem
from gateway.core.time import parse_instant, shanghai_date
from gateway.units.tree import UnitIndex


class Kind(StrEnum):
    COMPLAINT = "COMPLAINT"
    REPORT = "REPORT"
    INQUIRY = "INQUIRY"
    SUGGESTION = "SUGGESTION"


class Channel(StrEnum):
    HOTLINE = "HOTLINE"
    WEB = "WEB"
    WECHAT = "WECHAT"
    APP = "APP"
    MINI_PROGRAM = "MINI_PROGRAM"
    SMS = "SMS"
    LETTER = "LETTER"
    VISIT = "VISIT"
    GOV_HOTLINE_TRANSFER = "GOV_HOTLINE_TRANSFER"
    OTHER_TRANSFER = "OTHER_TRANSFER"


class Hotline(StrEnum):
    H12315 = "12315"
    H12365 = "12365"
    H12331 = "12331"
    H12358 = "12358"
    H12330 = "12330"


class Urgency(StrEnum):
    NORMAL = "NORMAL"
    URGENT = "URGENT"
    CRITICAL = "CRITICAL"


class Category(StrEnum):
    FOOD = "FOOD"
    DRUG = "DRUG"
    MEDICAL_DEVICE = "MEDICAL_DEVICE"
    COSMETICS = "COSMETICS"
    SPECIAL_EQUIPMENT = "SPECIAL_EQUIPMENT"
    PRODUCT_QUALITY = "PRODUCT_QUALITY"
    PRICE = "PRICE"
    ADVERTISING = "ADVERTISING"
    TRADEMARK = "TRADEMARK"
    PATENT = "PATENT"
    CONTRACT = "CONTRACT"
    SERVICE = "SERVICE"
    OTHER = "OTHER"


class EventType(StrEnum):
    DISPATCHED = "DISPATCHED"
    TRANSFERRED = "TRANSFERRED"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    MEDIATION_SUCCEEDED = "MEDIATION_SUCCEEDED"
    MEDIATION_FAILED = "MEDIATION_FAILED"
    VERIFIED = "VERIFIED"
    EXTENDED = "EXTENDED"
    CASE_FILED = "CASE_FILED"
    CASE_NOT_FILED = "CASE_NOT_FILED"
    REPLIED = "REPLIED"
    CALLBACK = "CALLBACK"
    CLOSED = "CLOSED"
    REOPENED = "REOPENED"


class Satisfaction(StrEnum):
    SATISFIED = "SATISFIED"
    BASICALLY_SATISFIED = "BASICALLY_SATISFIED"
    UNSATISFIED = "UNSATISFIED"
    UNREACHABLE = "UNREACHABLE"


# ---------------------------------------------------------------------------------------------- scalars

_UNIT_CODE = re.compile(r"^\d{6}(\d{3})?$")
_DECIMAL = re.compile(r"^\d{1,15}(\.\d{1,2})?$")
_RECORD_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _unit_code(value: str) -> str:
    if not _UNIT_CODE.match(value):
        raise ValueError("must be a unit code: 6 digits (GB/T 2260) or 9 digits for a station")
    return value


@lru_cache(maxsize=1 << 16)
def _uscc_ok(value: str) -> bool:
    # Cached: the same businesses recur across many records, and stdnum's check is slow for bulk loads.
    return len(value) == 18 and bool(stdnum_uscc.is_valid(value))


def _uscc(value: str) -> str:
    if not _uscc_ok(value):
        raise ValueError("not a valid Unified Social Credit Code (GB 32100-2015 check character)")
    return value


@lru_cache(maxsize=1)
def _division_codes() -> frozenset[str]:
    """GB/T 2260 codes as python-stdnum ships them: counties listed, their cities and provinces derived."""
    import importlib.resources

    codes: set[str] = set()
    text = importlib.resources.files("stdnum.cn").joinpath("loc.dat").read_text(encoding="utf-8")
    for line in text.splitlines():
        code = line[:6]
        if code.isdigit():
            codes.update((code, code[:4] + "00", code[:2] + "0000"))
    return frozenset(codes)


def _region_code(value: str) -> str:
    if not re.fullmatch(r"\d{6}", value) or value not in _division_codes():
        raise ValueError("not a GB/T 2260 administrative division code")
    return value


def _decimal(value: Any) -> Decimal:
    if not isinstance(value, str) or not _DECIMAL.match(value):
        raise ValueError("must be a non-negative decimal string with at most 2 decimal places, e.g. \"1299.00\"")
    return Decimal(value)


Instant = Annotated[datetime, BeforeValidator(parse_instant)]
UnitCode = Annotated[StrictStr, AfterValidator(_unit_code)]
Money = Annotated[Decimal, BeforeValidator(_decimal)]


# ---------------------------------------------------------------------------------------------- records

_STRICT = ConfigDict(extra="ignore", frozen=False, str_strip_whitespace=False)


class Respondent(BaseModel):
    model_config = _STRICT
    uscc: Annotated[StrictStr, AfterValidator(_uscc)] | None = None
    name: StrictStr = Field(min_length=1, max_length=500)


class Complainant(BaseModel):
    model_config = _STRICT
    name: StrictStr | None = Field(default=None, max_length=200)
    phone: StrictStr | None = Field(default=None, max_length=40)
    real_name: StrictBool


# What each event type carries in `data`: field -> (required, null allowed, check, what it must be).
# Plain checks rather than a model per type: events are the bulk of every import.
_DataRule = tuple[bool, bool, Callable[[Any], bool], str]


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_case_no(v: Any) -> bool:
    return isinstance(v, str) and 0 < len(v) <= 64


def _is_unit(v: Any) -> bool:
    return isinstance(v, str) and _UNIT_CODE.match(v) is not None


def _is_days(v: Any) -> bool:
    return type(v) is int and 1 <= v <= 365


_SATISFACTIONS = frozenset(s.value for s in Satisfaction)
_REASON: dict[str, _DataRule] = {"reason": (True, False, _is_str, "a string")}

EVENT_DATA: dict[EventType, dict[str, _DataRule]] = {
    EventType.DISPATCHED: {"to": (True, False, _is_unit, "a unit code")},
    EventType.TRANSFERRED: {
        "to": (False, True, _is_unit, "a unit code or null"),
        "department": (False, True, _is_str, "a string or null"),
    },
    EventType.ACCEPTED: {},
    EventType.REJECTED: _REASON,
    EventType.MEDIATION_SUCCEEDED: {},
    EventType.MEDIATION_FAILED: _REASON,
    EventType.VERIFIED: {},
    EventType.EXTENDED: {"working_days": (True, False, _is_days, "a whole number of working days, 1 to 365")},
    EventType.CASE_FILED: {"case_no": (True, False, _is_case_no, "a string of 1-64 characters")},
    EventType.CASE_NOT_FILED: _REASON,
    EventType.REPLIED: {},
    EventType.CALLBACK: {
        "satisfaction": (True, False, _SATISFACTIONS.__contains__, "one of " + ", ".join(sorted(_SATISFACTIONS)))
    },
    EventType.CLOSED: {},
    EventType.REOPENED: _REASON,
}


def check_event_data(type_: EventType, data: dict[str, Any]) -> None:
    """ValueError naming the field when `data` lacks what an event of `type_` must carry (records.md), or carries it in
    the wrong shape; fields not listed for the type are kept and not checked.
    """
    for name, (required, nullable, check, what) in EVENT_DATA[type_].items():
        if name not in data:
            if required:
                raise ValueError(f"data.{name}: required, {what} (for {type_.value})")
            continue
        value = data[name]
        if value is None and nullable:
            continue
        if value is None or not _passes(check, value):
            raise ValueError(f"data.{name}: must be {what} (for {type_.value})")


def _passes(check: Callable[[Any], bool], value: Any) -> bool:
    """A check of a value's shape; a value of a kind the check cannot even compare (a list where a word is
    expected: unhashable) fails it instead of raising."""
    try:
        return bool(check(value))
    except (TypeError, ValueError):
        return False


# ------------------------------------------------------------------------------------- text and numbers

DATA_MAX_DEPTH = 16  # an event's `data` object counts as level 1 (records.md 1.1)
_TEXT_CHECKED = {"text_checked": True}  # validation context: the whole record was checked already


def text_and_numbers(raw: Any, data_at: int) -> None:
    """records.md 1.1 over a record (`data_at`=4: record, events, event, data) or an event (`data_at`=2):
    ValueError naming the first field that holds U+0000, an unpaired surrogate or a number that is not
    finite, or an event's `data` nested deeper than DATA_MAX_DEPTH."""
    found = problem(raw, data_at - 1 + DATA_MAX_DEPTH)
    if found is None:
        return
    path, reason = found
    if reason.startswith("nests deeper"):
        data = next((i for i, p in enumerate(path) if p == "data"), None)
        where: Path = path[:data + 1] if data is not None else path[:1]
        reason = f"nests deeper than {DATA_MAX_DEPTH} levels" if data is not None else "nests too deep"
        path = where
    raise ValueError(f"{dotted(path)}: {reason}" if path else reason)


class EventIn(BaseModel):
    model_config = _STRICT
    id: StrictStr = Field(min_length=1, max_length=128)
    type: EventType
    at: Instant
    unit: UnitCode | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _check_text(cls, raw: Any, info: ValidationInfo) -> Any:
        if not (info.context and info.context.get("text_checked")):  # standalone: recordEvent
            text_and_numbers(raw, data_at=2)
        return raw

    @model_validator(mode="after")
    def _check_data(self) -> EventIn:
        check_event_data(self.type, self.data)
        return self


def _record_id(value: str) -> str:
    if not _RECORD_ID.match(value):
        raise ValueError("must be 1-64 characters of A-Z, a-z, 0-9, _ and -")
    return value


class ComplaintIn(BaseModel):
    model_config = _STRICT
    id: Annotated[StrictStr, AfterValidator(_record_id)]
    kind: Kind
    channel: Channel
    hotline: Hotline | None = None
    urgency: Urgency
    category: Category
    received_at: Instant
    handling_unit: UnitCode
    region_code: Annotated[StrictStr, AfterValidator(_region_code)] | None = None
    respondent: Respondent | None = None
    complainant: Complainant
    summary: StrictStr = Field(max_length=4000)
    amount_involved: Money | None = None
    recovered_amount: Money | None = None
    events: list[EventIn]
    updated_at: Instant | None = None  # the record's version (records.md 1.1)

    @model_validator(mode="before")
    @classmethod
    def _check_text(cls, raw: Any) -> Any:
        text_and_numbers(raw, data_at=4)
        return raw

    @model_validator(mode="after")
    def _check_record(self) -> ComplaintIn:
        if self.hotline is not None and self.channel is not Channel.HOTLINE:
            raise ValueError("hotline: only HOTLINE records name the number dialled")
        if len({ev.id for ev in self.events}) != len(self.events):
            # An event seen twice is stored once (records.md): the last copy wins, in the first one's place.
            unique: dict[str, EventIn] = {}
            for ev in self.events:
                unique[ev.id] = ev
            self.events = list(unique.values())
        return self

    @property
    def received_day(self) -> date:
        return shanghai_date(self.received_at)

    def sorted_events(self) -> list[EventIn]:
        """Events in `at` order; ties keep the order given (sorted() is stable)."""
        return sorted(self.events, key=lambda e: e.at)


def describe_errors(exc: ValidationError) -> str:
    """One line naming each failing field and why; whatever the input held is escaped (`printable`)."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = dotted(err["loc"])
        msg = printable(err["msg"].removeprefix("Value error, "))
        if not loc:
            parts.append(msg)
        else:
            parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def validate_record(raw: Any, units: UnitIndex | None = None) -> ComplaintIn:
    """The one validator of records.md: a decoded JSON value, or a JSON text (str or bytes: a line of an
    import file), as a `ComplaintIn`. With `units`, the handling unit must also be one of them.

    Raises ValueError with a one-line reason naming each failing field.
    """
    if isinstance(raw, str | bytes):
        # Not JSON at all: refused with where it breaks. Values JSON cannot hold (NaN, lone surrogates) are
        # decoded, and refused below by the field that holds them.
        try:
            raw = decode(raw)
        except JSONInputError as exc:
            where = f"line {exc.line} column {exc.column}" if exc.line and exc.line > 1 else f"column {exc.column}"
            raise ValueError(f"not valid JSON at {where}: {exc.reason}") from None
    if not isinstance(raw, dict):
        raise ValueError("record must be a JSON object")
    try:
        return _known_unit(ComplaintIn.model_validate(raw, context=_TEXT_CHECKED), units)
    except ValidationError as exc:
        raise ValueError(describe_errors(exc)) from None


def _known_unit(record: ComplaintIn, units: UnitIndex | None) -> ComplaintIn:
    if units is not None and record.handling_unit not in units:
        raise ValueError(f"handling_unit: unknown unit code {record.handling_unit}")
    return record
