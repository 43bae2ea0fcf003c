"""Working days (工作日) and "N working days after" (kpi.md), as index lookups.

Sources, per calendar year: the `chinesecalendar` package for the years it covers, an operator's holiday
file for further years (or to correct single days of a covered year), and Monday–Friday for a year with
neither, which makes every report touching that year say `calendar_complete: false`.

Holiday file (GATEWAY_HOLIDAYS_FILE): CSV, UTF-8, header `date,kind`, one line per day that differs from
Monday–Friday, `kind` being `holiday` (a weekday off) or `workday` (a weekend day declared a working day,
调休上班). An optional third column `name` is ignored. Every year that appears in the file counts as
covered. Lines starting with `#` are comments.

At construction the calendar lays out every day of its range once: `_count[i]` is the number of working
days on or before day i, `_workdays` the list of working days in order. The N-th working day after d is
then `_workdays[_count[d] + N - 1]`: no loop over days at report or import time.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import chinese_calendar
from chinese_calendar import constants as _cc

FIRST_YEAR = 1990  # the range laid out; dates outside it are refused rather than guessed
LAST_YEAR = 2199

HOLIDAY = "holiday"
WORKDAY = "workday"


class CalendarError(ValueError):
    """A holiday file that cannot be used, or a date outside the calendar's range."""


@dataclass(frozen=True, slots=True)
class DayOverrides:
    """Days that differ from Monday–Friday, from one source, and the years that source covers."""

    holidays: frozenset[date]
    workdays: frozenset[date]
    years: frozenset[int]


def package_overrides() -> DayOverrides:
    """What `chinesecalendar` knows (2004–2026 in version 1.11.0)."""
    holidays = frozenset(d for d in _cc.holidays if d.weekday() < 5)
    workdays = frozenset(_cc.workdays)
    years = frozenset(range(min(_cc.holidays).year, max(_cc.holidays).year + 1))
    return DayOverrides(holidays, workdays, years)


def parse_holiday_csv(text: str, source: str = "holiday file") -> DayOverrides:
    """The holiday file format described above; CalendarError naming the line when it is bad."""
    lines = [line for line in text.lstrip("\ufeff").splitlines() if not line.lstrip().startswith("#")]
    reader = csv.reader(io.StringIO("\n".join(lines)))
    header = next(reader, None)
    if header is None or [h.strip().lower() for h in header[:2]] != ["date", "kind"]:
        raise CalendarError(f"{source}: the first line must be the header date,kind")
    holidays: set[date] = set()
    workdays: set[date] = set()
    for number, cells in enumerate(reader, start=2):
        if not cells or not any(c.strip() for c in cells):
            continue
        if len(cells) < 2:
            raise CalendarError(f"{source} line {number}: expected date,kind")
        try:
            day = date.fromisoformat(cells[0].strip())
        except ValueError:
            raise CalendarError(f"{source} line {number}: {cells[0]!r} is not a date YYYY-MM-DD") from None
        kind = cells[1].strip().lower()
        if kind not in (HOLIDAY, WORKDAY):
            raise CalendarError(f"{source} line {number}: kind must be holiday or workday, got {cells[1]!r}")
        if not FIRST_YEAR <= day.year <= LAST_YEAR:
            raise CalendarError(f"{source} line {number}: {day} is outside {FIRST_YEAR}–{LAST_YEAR}")
        if day in (workdays if kind == HOLIDAY else holidays):
            raise CalendarError(f"{source} line {number}: {day} is listed both as a holiday and a workday")
        (holidays if kind == HOLIDAY else workdays).add(day)
    return DayOverrides(frozenset(holidays), frozenset(workdays), frozenset(d.year for d in holidays | workdays))


class WorkCalendar:
    """Working days over FIRST_YEAR..LAST_YEAR from the package, an optional holiday file, Monday–Friday."""

    def __init__(self, overrides: Iterable[DayOverrides] = (), *, use_package: bool = True) -> None:
        sources = [package_overrides(), *overrides] if use_package else list(overrides)
        kinds: dict[date, bool] = {}  # later sources win, day by day
        covered: set[int] = set()
        digest = hashlib.sha256(f"calendar-v1 {chinese_calendar.__version__ if use_package else '-'}".encode())
        for src in sources:
            covered |= src.years
            kinds.update(dict.fromkeys(src.holidays, False))
            kinds.update(dict.fromkeys(src.workdays, True))
            for d in sorted(src.holidays):
                digest.update(f"h{d}".encode())
            for d in sorted(src.workdays):
                digest.update(f"w{d}".encode())
        self.covered_years = frozenset(covered)
        self.fingerprint = digest.hexdigest()[:16]
        self._first = date(FIRST_YEAR, 1, 1)
        size = (date(LAST_YEAR, 12, 31) - self._first).days + 1
        count: list[int] = [0] * size
        workdays: list[date] = []
        day = self._first
        one = timedelta(days=1)
        for i in range(size):
            if kinds.get(day, day.weekday() < 5):
                workdays.append(day)
            count[i] = len(workdays)
            day += one
        self._count = count
        self._workdays = workdays

    @classmethod
    def from_file(cls, path: str | Path | None) -> WorkCalendar:
        """The package plus GATEWAY_HOLIDAYS_FILE when one is given."""
        if not path:
            return cls()
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CalendarError(f"cannot read holiday file {path}: {exc}") from None
        return cls([parse_holiday_csv(text, str(path))])

    def _index(self, day: date) -> int:
        i = (day - self._first).days
        if not 0 <= i < len(self._count):
            raise CalendarError(f"{day} is outside the calendar range {FIRST_YEAR}–{LAST_YEAR}")
        return i

    def is_workday(self, day: date) -> bool:
        i = self._index(day)
        return self._count[i] != (self._count[i - 1] if i else 0)

    def add_workdays(self, day: date, n: int) -> date:
        """The n-th working day after `day` (the day itself not counted; 期间开始之日不计算在内)."""
        if n < 1:
            raise ValueError("n must be at least 1")
        k = self._count[self._index(day)] + n - 1
        if k >= len(self._workdays):
            raise CalendarError(f"{n} working days after {day} is beyond {LAST_YEAR}")
        return self._workdays[k]

    def workdays_between(self, first: date, last: date) -> int:
        """The number of working days d with first < d <= last (0 when last <= first): the days left from
        `first` to a due date `last` (supervision.md `days_left`)."""
        if last <= first:
            return 0
        return self._count[self._index(last)] - self._count[self._index(first)]

    def fallback_years(self, years: Iterable[int]) -> list[int]:
        """The years among `years` that have no official source and use Monday–Friday."""
        return sorted(y for y in set(years) if y not in self.covered_years)


def years_between(first: date, last: date) -> range:
    return range(first.year, last.year + 1)
