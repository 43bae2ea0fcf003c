"""Named report periods (本月, 上月, 本季度, 上季度, 本年度, 上年度) as date ranges, in Asia/Shanghai days."""

from __future__ import annotations

from datetime import date, timedelta

PRESETS: dict[str, str] = {
    "this_month": "本月",
    "last_month": "上月",
    "this_quarter": "本季度",
    "last_quarter": "上季度",
    "this_year": "本年度",
    "last_year": "上年度",
}


def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def period_range(preset: str, today: date) -> tuple[date, date]:
    """[from, to] of a preset; a current period ends today, a past one is whole. KeyError for an unknown name."""
    if preset not in PRESETS:
        raise KeyError(preset)
    month_start = today.replace(day=1)
    if preset == "this_month":
        return month_start, today
    if preset == "last_month":
        end = month_start - timedelta(days=1)
        return end.replace(day=1), end
    if preset == "this_quarter":
        return _quarter_start(today), today
    if preset == "last_quarter":
        end = _quarter_start(today) - timedelta(days=1)
        return _quarter_start(end), end
    if preset == "this_year":
        return date(today.year, 1, 1), today
    return date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)


def months(first: date, last: date) -> list[tuple[date, date]]:
    """The calendar months that [first, last] touches, each clipped to the range."""
    out = []
    start = first
    while start <= last:
        nxt = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
        out.append((start, min(last, nxt - timedelta(days=1))))
        start = nxt
    return out
