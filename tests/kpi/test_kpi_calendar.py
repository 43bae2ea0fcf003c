"""Working days and "N working days after" (kpi.md), hand-checked against the State Council notices."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from kpi.calendar import CalendarError, WorkCalendar, parse_holiday_csv

CAL = WorkCalendar()


def test_kpi_md_example_national_day_and_adjusted_saturday() -> None:
    # 2024-09-29 is a Sunday declared a working day; 10-01..10-07 off; 10-12 a Saturday declared working.
    assert CAL.is_workday(date(2024, 9, 29))
    assert not CAL.is_workday(date(2024, 10, 7))
    assert CAL.is_workday(date(2024, 10, 12))
    assert CAL.add_workdays(date(2024, 9, 29), 7) == date(2024, 10, 14)


def test_start_day_not_counted() -> None:
    assert CAL.add_workdays(date(2024, 3, 4), 1) == date(2024, 3, 5)  # Monday -> Tuesday
    assert CAL.add_workdays(date(2024, 3, 8), 1) == date(2024, 3, 11)  # Friday -> Monday
    assert CAL.add_workdays(date(2024, 3, 9), 1) == date(2024, 3, 11)  # from a Saturday


def test_spring_festival_2024() -> None:
    # 2024 notice: 02-10..02-17 off, Sundays 02-04 and 02-18 working days.
    # Thu 02-08 + 7: 02-09, 02-18, 02-19, 02-20, 02-21, 02-22, 02-23.
    assert CAL.add_workdays(date(2024, 2, 8), 7) == date(2024, 2, 23)
    assert CAL.add_workdays(date(2024, 2, 3), 1) == date(2024, 2, 4)  # Sat -> the adjusted Sunday


def test_national_day_2025_across_adjusted_saturday() -> None:
    # 2025 notice: 10-01..10-08 off, Sunday 09-28 and Saturday 10-11 working days.
    # Tue 09-30 + 3: 10-09, 10-10, 10-11 (Saturday, working).
    assert CAL.add_workdays(date(2025, 9, 30), 3) == date(2025, 10, 11)


def test_year_outside_package_falls_back_to_monday_to_friday() -> None:
    assert 2026 in CAL.covered_years and 2027 not in CAL.covered_years
    assert CAL.fallback_years([2026, 2027, 2027]) == [2027]
    # 2026-12-31 is a Thursday; without a holiday file 2027-01-01 (Friday) is a working day.
    assert CAL.add_workdays(date(2026, 12, 31), 1) == date(2027, 1, 1)


def test_holiday_file_adds_a_year(tmp_path: Path) -> None:
    path = tmp_path / "holidays.csv"
    path.write_text(
        "date,kind\n# 2027 New Year\n2027-01-01,holiday\n2027-02-06,workday,春节调休\n", encoding="utf-8"
    )
    cal = WorkCalendar.from_file(path)
    assert 2027 in cal.covered_years and cal.fallback_years([2027]) == []
    assert cal.add_workdays(date(2026, 12, 31), 1) == date(2027, 1, 4)
    assert cal.is_workday(date(2027, 2, 6))  # a Saturday declared working
    assert cal.fingerprint != CAL.fingerprint


def test_holiday_file_corrects_a_covered_day() -> None:
    cal = WorkCalendar([parse_holiday_csv("date,kind\n2024-03-05,holiday\n")])
    assert cal.add_workdays(date(2024, 3, 4), 1) == date(2024, 3, 6)
    assert cal.add_workdays(date(2024, 9, 29), 7) == date(2024, 10, 14)  # the rest of 2024 untouched


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "header"),
        ("day,kind\n", "header"),
        ("date,kind\n2027-13-01,holiday\n", "line 2"),
        ("date,kind\n2027-01-01,vacation\n", "line 2"),
        ("date,kind\n2027-01-01,holiday\n2027-01-01,workday\n", "both"),
    ],
)
def test_bad_holiday_file(text: str, message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        parse_holiday_csv(text)


def test_missing_holiday_file(tmp_path: Path) -> None:
    with pytest.raises(CalendarError, match="cannot read"):
        WorkCalendar.from_file(tmp_path / "nope.csv")
