"""The gateway's one day in Asia/Shanghai, one instant parser and writer, one date parser, one money
formatter and one cursor encoding."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.cursor import decode_cursor, encode_cursor
from gateway.core.money import cents_to_money, money_to_cents
from gateway.core.time import SHANGHAI, as_utc, format_instant, parse_date, parse_instant, shanghai_date
from kpi.metrics import money
from kpi.obligations import local_day

OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
INSTANTS = st.datetimes(min_value=datetime(1980, 1, 1), max_value=datetime(2100, 1, 1), timezones=OFFSETS)


@given(INSTANTS)
def test_shanghai_day_is_the_zone_database_day(instant: datetime) -> None:
    assert shanghai_date(instant) == instant.astimezone(SHANGHAI).date() == local_day(instant)


@given(INSTANTS)
def test_instants_written_in_shanghai_read_back_equal(instant: datetime) -> None:
    text = format_instant(instant)
    assert text[-6:] == "+08:00" or instant.year < 1992  # China kept daylight saving until 1991
    assert parse_instant(text) == instant


def test_parse_instant_refuses_what_is_not_rfc3339() -> None:
    assert parse_instant("2024-03-01T01:30:00Z") == datetime(2024, 3, 1, 1, 30, tzinfo=UTC)
    for bad in ("2024-03-01T09:30:00", "2024-03-01", 1709256600, "2024-03-01T09:30:00+0800", None):
        with pytest.raises(ValueError, match="RFC 3339"):
            parse_instant(bad)



# Strings of the plain form's shape (parse_instant's shortcut), digits anywhere: valid, out of range (years
# 0000-1900, 2199-9999 with any offset), impossible dates and offsets.
_DIGITS = st.text("0123456789", min_size=2, max_size=2)
PLAIN_SHAPED = st.builds(
    lambda y, mo, d, h, mi, s, sign, oh, om: f"{y}-{mo}-{d}T{h}:{mi}:{s}{sign}{oh}:{om}",
    st.text("0123456789", min_size=4, max_size=4) | st.sampled_from(["1900", "1901", "2198", "2199"]),
    _DIGITS | st.sampled_from(["01", "12"]), _DIGITS | st.sampled_from(["01", "28", "31"]),
    _DIGITS | st.just("23"), _DIGITS, _DIGITS, st.sampled_from("+-"), _DIGITS | st.sampled_from(["14", "23"]),
    _DIGITS | st.just("59"),
)


@given(PLAIN_SHAPED)
def test_the_plain_form_shortcut_reads_as_the_general_parser(text: str) -> None:
    from gateway.core.time import _parse_rfc3339

    def outcome(parse: object) -> object:
        try:
            return parse(text)  # type: ignore[operator]
        except ValueError as exc:
            return str(exc)

    assert outcome(parse_instant) == outcome(_parse_rfc3339)

def test_parse_date() -> None:
    assert parse_date("2024-02-29") == date(2024, 2, 29)
    for bad in ("2023-02-29", "2024/03/01", "", "tomorrow"):
        with pytest.raises(ValueError, match="is not a date YYYY-MM-DD"):
            parse_date(bad)


def test_as_utc_reads_what_sqlite_hands_back() -> None:
    aware = datetime(2024, 3, 1, 1, 30, tzinfo=UTC)
    assert as_utc(aware) is aware
    assert as_utc(datetime(2024, 3, 1, 1, 30)) == aware
    assert as_utc("2024-03-01 01:30:00.000000") == aware


@given(st.integers(0, 10**17))
def test_one_money_formatter(cents: int) -> None:
    text = cents_to_money(cents)
    assert text == money(cents)
    assert text is not None and money_to_cents(Decimal(text)) == cents
    assert cents_to_money(None) is None and money_to_cents(None) is None


@given(st.decimals(min_value=0, max_value=10**12, places=4, allow_nan=False, allow_infinity=False))
def test_upstream_amounts_format_like_two_places(value: Decimal) -> None:
    assert cents_to_money(money_to_cents(value)) == f"{value:.2f}"


@given(INSTANTS, st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1,
                         max_size=64))
def test_cursor_round_trip(at: datetime, key: str) -> None:
    """Keys are stored ids: text the database can hold (records.md 1.1) round-trips."""
    assert decode_cursor(encode_cursor(at, key)) == (at, key)


@pytest.mark.parametrize("key", ["\x00", "a\x00", "\ud800"])
def test_cursor_refuses_a_key_the_database_cannot_hold(key: str) -> None:
    with pytest.raises(ValueError, match="invalid cursor"):
        decode_cursor(encode_cursor(datetime(2024, 1, 1, tzinfo=UTC), key))


@pytest.mark.parametrize("cursor", ["", "garbage!", encode_cursor(datetime(2024, 1, 1, tzinfo=UTC), "x")[:-4],
                                    "WyIyMDI0LTAxLTAxVDAwOjAwOjAwIiwgIngiXQ=="])  # a naive instant
def test_cursor_refuses_what_it_did_not_make(cursor: str) -> None:
    with pytest.raises(ValueError, match="invalid cursor"):
        decode_cursor(cursor)
