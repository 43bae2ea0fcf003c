"""Time as the gateway reads and writes it: instants are RFC 3339 with an offset, days are Asia/Shanghai.

One parser for instants (`parse_instant`) and one for dates (`parse_date`), used by the record validator,
the REST API, the evaluators' page and the CLI alike; one "day in Asia/Shanghai" (`shanghai_date`); one way
to write an instant (`format_instant`, in +08:00) for reports and the bodies sent to external systems.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
_EIGHT_HOURS = timedelta(hours=8)
# Instants and dates the gateway accepts: no complaint predates 1900, and beyond 2199 the date arithmetic
# of deadlines (working days after a far date) would overflow Python's year 9999. Anything outside is a typo.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
_RANGE = "must fall between 1900-01-01 and 2199-12-31"
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
_PLAIN = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}").fullmatch  # a subset of _RFC3339


def shanghai_date(instant: datetime) -> date:
    """The calendar date of an aware instant in Asia/Shanghai. China has kept UTC+8 without daylight saving
    since 1992, and a fixed offset is far cheaper than a zone lookup on bulk loads."""
    offset = instant.utcoffset()
    if instant.year >= 1992 and offset is not None:
        return (instant.replace(tzinfo=None) - offset + _EIGHT_HOURS).date()
    return instant.astimezone(SHANGHAI).date()


def format_instant(instant: datetime) -> str:
    """An aware instant as RFC 3339 in Asia/Shanghai, e.g. `2024-03-01T09:30:00+08:00`."""
    return instant.astimezone(SHANGHAI).isoformat()


def as_utc(value: datetime | str) -> datetime:
    """An instant read back from the database, aware. SQLite hands aggregates (MIN, MAX) back as naive UTC,
    sometimes as text; both are read as UTC."""
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def parse_instant(value: Any) -> datetime:
    """An RFC 3339 timestamp with an offset; ValueError for anything else (naive, epoch numbers, dates).
    Fractions beyond microseconds are cut, not rounded."""
    if type(value) is str and len(value) == 25 and _PLAIN(value):
        # The form nearly every record uses (2024-01-31T09:30:00+08:00), read in fewer steps for bulk loads:
        # the same value and the same errors as below. Years 1901-2198 are in range whatever the offset.
        try:
            instant = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"not a valid timestamp: {exc}") from None
        return instant if 1900 < instant.year < 2199 else check_instant(instant)
    return _parse_rfc3339(value)


def _parse_rfc3339(value: Any) -> datetime:
    """`parse_instant` for every form RFC 3339 allows."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 timestamp with offset, e.g. 2024-01-31T09:30:00+08:00")
    text = value[:-1] + "+00:00" if value[-1] in "Zz" else value
    if "." in text:  # fromisoformat takes at most microseconds
        head, _, tail = text.partition(".")
        digits = re.match(r"\d+", tail)
        assert digits
        text = f"{head}.{digits.group(0)[:6].ljust(6, '0')}{tail[digits.end():]}"
    try:
        instant = datetime.fromisoformat(text.replace("t", "T"))
    except ValueError as exc:
        raise ValueError(f"not a valid timestamp: {exc}") from None
    return check_instant(instant)


def check_instant(instant: datetime) -> datetime:
    """`instant` when it is aware and within EARLIEST..LATEST (as an instant); ValueError otherwise."""
    if instant.tzinfo is None:
        raise ValueError("must have an offset, e.g. 2024-01-31T09:30:00+08:00")
    try:
        utc = instant.astimezone(UTC)
    except OverflowError:
        raise ValueError(_RANGE) from None
    if not EARLIEST <= utc < LATEST:
        raise ValueError(_RANGE)
    return instant


def check_date(day: date) -> date:
    """`day` when it is within the years of EARLIEST..LATEST; ValueError otherwise."""
    if not EARLIEST.year <= day.year < LATEST.year:
        raise ValueError(_RANGE)
    return day


def parse_date(value: str) -> date:
    """A calendar date `YYYY-MM-DD`; ValueError naming the value otherwise."""
    try:
        day = date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a date YYYY-MM-DD") from None
    try:
        return check_date(day)
    except ValueError as exc:
        raise ValueError(f"{value!r} {exc}") from None


def required_date(values: Mapping[str, Any], name: str, error: type[Exception] = ValueError) -> date:
    """The argument `name` of `values` (a URL's query, a form) as a date `YYYY-MM-DD`. Raises `error` with a
    message naming the argument when it is missing, empty or not such a date."""
    value = values.get(name)
    if not value:
        raise error(f"{name} is required (YYYY-MM-DD)")
    try:
        return parse_date(value)
    except ValueError as exc:
        raise error(f"{name}: {exc}") from None
