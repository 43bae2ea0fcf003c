"""Analysis (分析研判, supervision.md): where complaints rise — `trends` (环比 / 同比 by a dimension) and
`series` (zero-filled counts per day, ISO week or month).

Both are GROUP BY queries on `complaints`, on the caller's unit's ancestor column and `received_day`
(indexed together), narrowed by the `complaints` filter (`gateway.complaints.filters`). `trends` reads both
periods in one scan, conditional sums per key, and lets the database order and cut the keys (window sums
give the total over all keys in the same pass); `series` reads one count per day and buckets the days.
No record is loaded into Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, case, func, literal, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from gateway.complaints.filters import filter_conditions
from gateway.complaints.models import Complaint
from gateway.reports.deadlines import ensure_facts_current
from gateway.reports.deadlines import overdue_condition as deadlines_overdue
from gateway.units.models import OrgUnit
from kpi.exports import KIND_NAMES

DIMENSIONS = ("CATEGORY", "KIND", "CHANNEL", "HOTLINE", "URGENCY", "SUBORDINATE_UNIT", "ENTERPRISE", "REGION")
COMPARISONS = ("PREVIOUS_PERIOD", "SAME_PERIOD_LAST_YEAR")
INTERVALS = ("DAY", "WEEK", "MONTH")
MAX_DAYS = 3661  # ten years and a day: a range is for analysis, not a way to scan the whole history at once
MAX_TOP = 500
TOTAL_KEY = "TOTAL"

_COMPLAINTS: Table = Complaint.__table__  # type: ignore[assignment]

# Chinese first, as the supervisors read them (the records.md enum values are the keys).
LABELS: dict[str, dict[str, str]] = {
    "CATEGORY": {
        "FOOD": "食品", "DRUG": "药品", "MEDICAL_DEVICE": "医疗器械", "COSMETICS": "化妆品",
        "SPECIAL_EQUIPMENT": "特种设备", "PRODUCT_QUALITY": "产品质量", "PRICE": "价格", "ADVERTISING": "广告",
        "TRADEMARK": "商标", "PATENT": "专利", "CONTRACT": "合同", "SERVICE": "服务", "OTHER": "其他",
    },
    "KIND": dict(KIND_NAMES),
    "CHANNEL": {
        "HOTLINE": "电话", "WEB": "网站", "WECHAT": "微信", "APP": "移动应用", "MINI_PROGRAM": "小程序",
        "SMS": "短信", "LETTER": "信件", "VISIT": "来访", "GOV_HOTLINE_TRANSFER": "政务热线转办",
        "OTHER_TRANSFER": "其他转办",
    },
    "HOTLINE": {
        "12315": "12315 市场监管", "12365": "12365 质量监督", "12331": "12331 食品药品",
        "12358": "12358 价格监督", "12330": "12330 知识产权",
    },
    "URGENCY": {"NORMAL": "一般", "URGENT": "紧急", "CRITICAL": "特别紧急"},
}


class AnalysisError(ValueError):
    """Bad input for an analysis; `code` is the interfaces.md error code (BAD_USER_INPUT, NOT_FOUND)."""

    def __init__(self, message: str, code: str = "BAD_USER_INPUT") -> None:
        super().__init__(message)
        self.code = code


# ------------------------------------------------------------------------------------------------ periods


def one_year_earlier(day: date) -> date:
    """The same date a year earlier; 29 February becomes 28 February."""
    try:
        return day.replace(year=day.year - 1)
    except ValueError:
        return day.replace(year=day.year - 1, day=28)


def previous_period(date_from: date, date_to: date, compare_with: str) -> tuple[date, date]:
    """The period `trends` compares [date_from, date_to] with (both ends inclusive).

    PREVIOUS_PERIOD (环比): as many days, ending the day before `date_from`. SAME_PERIOD_LAST_YEAR (同比):
    both ends one year earlier (29 February → 28 February)."""
    if compare_with == "PREVIOUS_PERIOD":
        previous_to = date_from - timedelta(days=1)
        return previous_to - (date_to - date_from), previous_to
    if compare_with == "SAME_PERIOD_LAST_YEAR":
        return one_year_earlier(date_from), one_year_earlier(date_to)
    raise AnalysisError(f"compareWith must be one of {', '.join(COMPARISONS)}")


def check_range(date_from: date, date_to: date) -> None:
    if date_from > date_to:
        raise AnalysisError(f"from {date_from} is after to {date_to}")
    if (date_to - date_from).days + 1 > MAX_DAYS:
        raise AnalysisError(f"from..to spans more than {MAX_DAYS} days; analyse a shorter range")
    if date_from.year < 1901 or date_to.year > 9998:
        raise AnalysisError("from and to must lie between 1901 and 9998")


# ---------------------------------------------------------------------------------------------- the rows


@dataclass(frozen=True, slots=True)
class TrendRow:
    key: str
    label: str
    count: int
    previous_count: int

    @property
    def change(self) -> int:
        return self.count - self.previous_count

    @property
    def change_rate(self) -> float | None:
        """change / previous_count; None when there was nothing before."""
        return self.change / self.previous_count if self.previous_count else None


@dataclass(frozen=True, slots=True)
class ReportUnit:
    code: str
    name: str
    level: int


@dataclass(frozen=True, slots=True)
class TrendReport:
    unit: ReportUnit
    by: str
    compare_with: str
    date_from: date
    date_to: date
    previous_from: date
    previous_to: date
    total: TrendRow
    rows: list[TrendRow]


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    start: date  # the day, the ISO week's Monday or the month's first day
    count: int


# ------------------------------------------------------------------------------------------------ queries


async def report_unit(session: AsyncSession, code: str) -> ReportUnit:
    row = (await session.execute(select(OrgUnit.code, OrgUnit.name, OrgUnit.level).where(OrgUnit.code == code))).first()
    if row is None:
        raise AnalysisError(f"unknown unit {code}", code="NOT_FOUND")
    return ReportUnit(row.code, row.name, int(row.level))


async def overdue_condition(session: AsyncSession, overdue: bool, now: datetime | None = None) -> ColumnElement[bool]:
    """Records with (True) or without (False) an obligation past its due date at `now`: the one rule of the
    `complaints` filter (`gateway.reports.deadlines.overdue_condition`, over the stored due dates)."""
    bind = session.bind
    if isinstance(bind, AsyncEngine):  # facts derived with another calendar or policy are derived again first
        await ensure_facts_current(bind)
    late = deadlines_overdue(Complaint.id, now or datetime.now(UTC))
    return late if overdue else not_(late)


async def filtered(session: AsyncSession, flt: Mapping[str, Any] | None) -> list[ColumnElement[bool]]:
    """The conditions of a `complaints` filter (snake_case mapping, `gateway.complaints.filters`), `overdue`
    included (over the KPI facts). FilterError for a filter that cannot be used."""

    async def unit_level(code: str) -> int | None:
        return await session.scalar(select(OrgUnit.level).where(OrgUnit.code == code))

    parsed = await filter_conditions(flt, unit_level)
    conditions = list(parsed.conditions)
    if parsed.overdue is not None:
        conditions.append(await overdue_condition(session, parsed.overdue))
    return conditions


def _key_column(by: str, unit: ReportUnit) -> Any:
    c = _COMPLAINTS.c
    if by == "SUBORDINATE_UNIT":
        # Grouped on the raw column; the null group (records handled by the unit itself) is named after it.
        return c[f"u{unit.level + 1}"] if unit.level < 5 else literal(None, type_=c.u5.type)
    return {"CATEGORY": c.category, "KIND": c.kind, "CHANNEL": c.channel, "HOTLINE": c.hotline,
            "URGENCY": c.urgency, "ENTERPRISE": c.respondent_uscc, "REGION": c.region_code}[by]


async def trends(
    session: AsyncSession,
    unit: str,
    date_from: date,
    date_to: date,
    by: str,
    compare_with: str = "PREVIOUS_PERIOD",
    conditions: Sequence[ColumnElement[bool]] = (),
    top: int = 20,
) -> TrendReport:
    """Counts of the records of `unit`'s subtree received in [date_from, date_to] and in the compared period,
    per key of dimension `by`, narrowed by `conditions` (the filter's).

    `rows`: the `top` keys by count (descending), then change (descending), then key; keys with no record in
    either period are absent. `total`: every key (records without a key — no USCC, no region, no hotline —
    are not counted). AnalysisError for a bad dimension, comparison, range or `top`; NOT_FOUND for an
    unknown unit."""
    if by not in DIMENSIONS:
        raise AnalysisError(f"by must be one of {', '.join(DIMENSIONS)}")
    if not 0 <= top <= MAX_TOP:
        raise AnalysisError(f"top must be between 0 and {MAX_TOP}, got {top}")
    check_range(date_from, date_to)
    previous_from, previous_to = previous_period(date_from, date_to, compare_with)
    target = await report_unit(session, unit)
    c = _COMPLAINTS.c
    key = _key_column(by, target)
    current = and_(c.received_day >= date_from, c.received_day <= date_to)
    previous = and_(c.received_day >= previous_from, c.received_day <= previous_to)
    where = [c[f"u{target.level}"] == unit, or_(current, previous), *conditions]
    if by in ("HOTLINE", "ENTERPRISE", "REGION"):
        where.append(key.is_not(None))
    grouped = (
        select(
            key.label("k"),
            func.sum(case((current, 1), else_=0)).label("n"),
            func.sum(case((previous, 1), else_=0)).label("p"),
        )
        .where(*where)
        .group_by(key)
        .subquery()
    )
    named = func.coalesce(grouped.c.k, unit) if by == "SUBORDINATE_UNIT" else grouped.c.k
    ranked = (
        select(
            named.label("key"), grouped.c.n, grouped.c.p,
            func.sum(grouped.c.n).over().label("total_n"), func.sum(grouped.c.p).over().label("total_p"),
        )
        .order_by(grouped.c.n.desc(), (grouped.c.n - grouped.c.p).desc(), named)
        .limit(max(top, 1))  # one row at least, to carry the window totals
    )
    found = (await session.execute(ranked)).all()
    total_n = int(found[0].total_n) if found else 0
    total_p = int(found[0].total_p) if found else 0
    found = found[:top]
    labels = await _labels(session, by, [r.key for r in found], target)
    rows = [TrendRow(r.key, labels.get(r.key, r.key), int(r.n), int(r.p)) for r in found]
    return TrendReport(
        unit=target, by=by, compare_with=compare_with, date_from=date_from, date_to=date_to,
        previous_from=previous_from, previous_to=previous_to,
        total=TrendRow(TOTAL_KEY, "合计", total_n, total_p), rows=rows,
    )


async def _labels(session: AsyncSession, by: str, keys: list[str], unit: ReportUnit) -> dict[str, str]:
    if by in LABELS:
        return LABELS[by]
    if not keys:
        return {}
    if by in ("SUBORDINATE_UNIT", "REGION"):  # a region code is a division code: the unit of that area
        found = await session.execute(select(OrgUnit.code, OrgUnit.name).where(OrgUnit.code.in_(keys)))
        return {code: name for code, name in found.all()}
    # ENTERPRISE: the name on the latest record of the unit's subtree that names the enterprise
    c = _COMPLAINTS.c
    found = await session.execute(
        select(c.respondent_uscc, c.respondent_name, func.max(c.received_at).label("at"))
        .where(c.respondent_uscc.in_(keys), c[f"u{unit.level}"] == unit.code, c.respondent_name.is_not(None))
        .group_by(c.respondent_uscc, c.respondent_name)
    )
    latest: dict[str, tuple[Any, str]] = {}
    for uscc, name, at in found.all():
        if uscc not in latest or (at, name) > latest[uscc]:
            latest[uscc] = (at, name)
    return {uscc: name for uscc, (_, name) in latest.items()}


def bucket_start(day: date, interval: str) -> date:
    if interval == "DAY":
        return day
    if interval == "WEEK":
        return day - timedelta(days=day.weekday())  # ISO weeks start on Monday
    return day.replace(day=1)


def _next_bucket(start: date, interval: str) -> date:
    if interval == "DAY":
        return start + timedelta(days=1)
    if interval == "WEEK":
        return start + timedelta(days=7)
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)


async def series(
    session: AsyncSession,
    unit: str,
    date_from: date,
    date_to: date,
    interval: str,
    conditions: Sequence[ColumnElement[bool]] = (),
) -> list[SeriesPoint]:
    """One point per day, ISO week (Monday) or calendar month overlapping [date_from, date_to], in order, zeros
    included; a point counts the records of `unit`'s subtree received on its days that lie in the range
    (so the first and last weeks or months may be partial). AnalysisError / NOT_FOUND as `trends`."""
    if interval not in INTERVALS:
        raise AnalysisError(f"interval must be one of {', '.join(INTERVALS)}")
    check_range(date_from, date_to)
    target = await report_unit(session, unit)
    c = _COMPLAINTS.c
    per_day = await session.execute(
        select(c.received_day, func.count())
        .where(c[f"u{target.level}"] == unit, c.received_day >= date_from, c.received_day <= date_to, *conditions)
        .group_by(c.received_day)
    )
    counts: dict[date, int] = {}
    for day, n in per_day.all():
        start = bucket_start(day, interval)
        counts[start] = counts.get(start, 0) + int(n)
    points = []
    start = bucket_start(date_from, interval)
    while start <= date_to:
        points.append(SeriesPoint(start, counts.get(start, 0)))
        start = _next_bucket(start, interval)
    return points
