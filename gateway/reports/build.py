"""The KPI report (kpi.md) as the JSON document of interfaces.md, computed with aggregate SQL.

Three GROUP BY queries over the facts tables of `gateway.reports.facts`, each filtered on the report's
population (the unit's ancestor column, the received-day range, received_at <= as_of) and grouped on the
level's ancestor column; the state of every obligation at `as_of` is a CASE over stored instants. No
record is loaded into Python: the database returns one line per unit (per obligation and policy for the
second query). `kpi.metrics` then turns the counts into rates, score and rank.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import and_, case, func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from gateway.core.time import format_instant, shanghai_date
from gateway.reports.facts import KpiConfig, configured, ensure_current
from gateway.reports.models import KpiCallbackFact, KpiObligationFact, KpiRecordFact
from gateway.units.models import OrgUnit
from kpi.calendar import CalendarError, years_between
from kpi.metrics import CHANNELS, HOTLINES, KINDS, RowCounts, build_row
from kpi.obligations import SATISFIED_VALUES, UNREACHABLE
from kpi.policies import DEFAULT_SCHEME, PolicyError
from kpi.scoring import rank_rows


class ReportError(ValueError):
    """Bad input for a report; `code` is the interfaces.md error code (BAD_USER_INPUT, NOT_FOUND)."""

    def __init__(self, message: str, code: str = "BAD_USER_INPUT") -> None:
        super().__init__(message)
        self.code = code


class KpiConfigError(RuntimeError):
    """GATEWAY_HOLIDAYS_FILE or GATEWAY_POLICY_FILE cannot be used: the operator's problem, not the caller's."""


def load_config() -> KpiConfig:
    """The KPI calendar and policies of the settings (the one cache, `gateway.reports.facts.kpi_config`).
    KpiConfigError when a configured file cannot be used.
    """
    try:
        return configured()
    except (CalendarError, PolicyError) as exc:
        raise KpiConfigError(str(exc)) from None


def _count(condition: ColumnElement[bool]) -> Any:
    return func.sum(case((condition, 1), else_=0))


def _valid_at(model: Any, as_of: datetime) -> ColumnElement[bool]:
    return and_(model.valid_from <= as_of, or_(model.valid_to.is_(None), model.valid_to > as_of))


def unfulfilled_at(as_of: datetime) -> ColumnElement[bool]:
    """SQL over `kpi_obligation_facts`: the obligation has started and is not fulfilled at `as_of` (kpi.md
    OVERDUE or PENDING), on the step that applies then. The deadline lights use this very condition."""
    of = KpiObligationFact
    return and_(
        of.received_at <= as_of, _valid_at(of, as_of), or_(of.fulfilled_at.is_(None), of.fulfilled_at > as_of)
    )


def overdue_at(as_of: datetime) -> ColumnElement[bool]:
    """SQL over `kpi_obligation_facts`: OVERDUE at `as_of` (unfulfilled, due date before as_of's date), given
    that the row is the step valid at `as_of`."""
    of = KpiObligationFact
    return and_(or_(of.fulfilled_at.is_(None), of.fulfilled_at > as_of), of.due_day < shanghai_date(as_of))


@dataclass(frozen=True, slots=True)
class ReportScope:
    """What a report covers: `unit` (of `unit_level`), rows at `level`, received days [date_from, date_to],
    as of `as_of`. Handed to the row sections that domains above this package compute."""

    unit: str
    unit_level: int
    level: int
    date_from: date
    date_to: date
    as_of: datetime

    def population(self, model: Any) -> ColumnElement[bool]:
        """SQL: the report's records, on any table carrying the facts' grouping columns."""
        return and_(
            getattr(model, f"u{self.unit_level}") == self.unit,
            model.received_day >= self.date_from,
            model.received_day <= self.date_to,
            model.received_at <= self.as_of,
        )

    def row_column(self, model: Any) -> Any:
        """The grouping column of the rows' level (null for records handled above it)."""
        return getattr(model, f"u{self.level}")


# The `supervision` block's counts, [issued, responded_on_time, responded_late, overdue], per row unit (None:
# records that belong to no row) and for the whole report (an order on several rows counts once there).
OrderCounts = tuple[dict[str | None, list[int]], list[int]]
OrderCounter = Callable[[AsyncSession, ReportScope], Awaitable[OrderCounts]]


async def _ensure_facts(session: AsyncSession, config: KpiConfig) -> None:
    """Facts derived with another calendar or policy set are derived again, in a transaction of their own
    that commits before the report reads (the caller's session may never commit)."""
    bind = session.bind
    if bind is None:
        await ensure_current(session, config)
        return
    async with AsyncSession(bind) as own, own.begin():
        await ensure_current(own, config)


async def build_report(
    session: AsyncSession,
    unit: str,
    level: int | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    as_of: datetime | None = None,
    scheme: str | None = None,
    config: KpiConfig | None = None,
    details: dict[str, Any] | None = None,
    orders: OrderCounter | None = None,
) -> dict[str, Any]:
    """The KPI report document of interfaces.md; ReportError for bad input.

    `details`, when given, receives what the document does not carry but a page explains:
    `calendar_fallback_years` (the years its due dates reach that the calendar does not cover) and
    `last_due` (the latest due date among its obligations).

    `orders` counts the supervision orders of each row (`gateway.supervision.report.count_orders`): this
    package cannot import the supervision package above it, so the API and CLI hand the counter in. Without
    it every row's `supervision` block is zeros."""
    config = config or load_config()
    scheme_name = scheme or DEFAULT_SCHEME
    try:
        weights = config.policies.scheme(scheme_name)
    except PolicyError as exc:
        raise ReportError(str(exc)) from None
    if date_from is None or date_to is None:
        raise ReportError("from and to are required dates")
    if date_from > date_to:
        raise ReportError(f"from {date_from} is after to {date_to}")
    if as_of is None:
        as_of = datetime.now(UTC).replace(microsecond=0)
    elif as_of.tzinfo is None:
        raise ReportError("as_of needs an offset, e.g. 2024-06-30T23:59:59+08:00")
    top = (await session.execute(select(OrgUnit.code, OrgUnit.name, OrgUnit.level).where(OrgUnit.code == unit))).first()
    if top is None:
        raise ReportError(f"unknown unit {unit}", code="NOT_FOUND")
    if level is None:
        level = top.level + 1
    if not top.level < level <= 5:
        raise ReportError(
            f"level must be below the unit's level {top.level} and at most 5, got {level}"
            if top.level < 5 else f"unit {unit} is a level-5 unit: it has no units below it to report on"
        )
    await _ensure_facts(session, config)

    row_col = f"u{level}"
    scope = ReportScope(unit, top.level, level, date_from, date_to, as_of)
    population = scope.population

    counts: dict[str | None, RowCounts] = defaultdict(RowCounts)

    rf = KpiRecordFact
    record_query = (
        select(
            getattr(rf, row_col).label("unit"),
            func.count().label("received"),
            *(_count(rf.kind == k).label(f"kind_{k}") for k in KINDS),
            *(_count(rf.channel == c).label(f"channel_{c}") for c in CHANNELS),
            *(_count(rf.hotline == h).label(f"hotline_{h}") for h in HOTLINES),
            _count(rf.reply_owed_at <= as_of).label("reply_owed"),
            _count(rf.replied_at <= as_of).label("replied"),
            _count(rf.concluded_at <= as_of).label("concluded"),
            _count(and_(rf.concluded_at <= as_of, rf.first_callback_at <= as_of)).label("called_back"),
            _count(rf.mediation_outcome_at <= as_of).label("mediation_outcomes"),
            _count(and_(rf.mediation_outcome_at <= as_of, rf.mediation_succeeded)).label("mediation_succeeded"),
            _count(rf.decided_at <= as_of).label("decided"),
            _count(and_(rf.decided_at <= as_of, rf.case_filed)).label("case_filed"),
            func.sum(rf.recovered_cents).label("recovered_cents"),
        )
        .where(population(rf))
        .group_by(getattr(rf, row_col))
    )
    for row in (await session.execute(record_query)).mappings():
        c = counts[row["unit"]]
        c.received = int(row["received"])
        c.by_kind = {k: int(row[f"kind_{k}"]) for k in KINDS}
        c.by_channel = {k: int(row[f"channel_{k}"]) for k in CHANNELS}
        c.by_hotline = {k: int(row[f"hotline_{k}"]) for k in HOTLINES}
        for name in ("reply_owed", "replied", "concluded", "called_back", "mediation_outcomes",
                     "mediation_succeeded", "decided", "case_filed", "recovered_cents"):
            setattr(c, name, int(row[name] or 0))

    of = KpiObligationFact
    fulfilled = of.fulfilled_at <= as_of
    obligation_query = (
        select(
            getattr(of, row_col).label("unit"), of.obligation, of.policy,
            _count(and_(fulfilled, of.on_time)).label("on_time"),
            _count(and_(fulfilled, not_(of.on_time))).label("late"),
            _count(overdue_at(as_of)).label("overdue"),
            func.max(of.due_day).label("last_due"),
        )
        .where(population(of), _valid_at(of, as_of))
        .group_by(getattr(of, row_col), of.obligation, of.policy)
    )
    used_policies: set[str] = set()
    last_due = date_to
    for row in (await session.execute(obligation_query)).mappings():
        triple = counts[row["unit"]].obligations[row["obligation"]]
        triple[0] += int(row["on_time"])
        triple[1] += int(row["late"])
        triple[2] += int(row["overdue"])
        used_policies.add(row["policy"])
        last_due = max(last_due, row["last_due"])

    cf = KpiCallbackFact
    callback_query = (
        select(
            getattr(cf, row_col).label("unit"),
            _count(cf.satisfaction != UNREACHABLE).label("reachable"),
            _count(cf.satisfaction.in_(sorted(SATISFIED_VALUES))).label("satisfied"),
        )
        .where(population(cf), _valid_at(cf, as_of))
        .group_by(getattr(cf, row_col))
    )
    for row in (await session.execute(callback_query)).mappings():
        counts[row["unit"]].callback_reachable = int(row["reachable"])
        counts[row["unit"]].satisfied = int(row["satisfied"])

    order_total = [0, 0, 0, 0]
    if orders is not None:
        by_row, order_total = await orders(session, scope)
        for code, four in by_row.items():
            counts[code].supervision = list(four)

    units = (
        await session.execute(
            select(OrgUnit.code, OrgUnit.name, OrgUnit.level)
            .where(getattr(OrgUnit, f"l{top.level}") == unit, OrgUnit.level == level)
            .order_by(OrgUnit.code)
        )
    ).all()
    rows = [build_row({"code": u.code, "name": u.name, "level": u.level}, counts.get(u.code, RowCounts()), weights)
            for u in units]
    total = RowCounts()
    for c in counts.values():  # rows, plus records handled by the unit itself or above the level
        total.add(c)
    total.supervision = list(order_total)  # an order on records of several rows is one order here
    used = [v.version for v in config.policies.versions if v.version in used_policies]
    fallback_years = config.calendar.fallback_years(years_between(date_from, last_due))
    if details is not None:
        details.update(calendar_fallback_years=fallback_years, last_due=last_due)
    return {
        "unit": {"code": top.code, "name": top.name, "level": top.level},
        "level": level,
        "from": date_from.isoformat(),
        "to": date_to.isoformat(),
        "as_of": format_instant(as_of),
        "scheme": scheme_name,
        "calendar_complete": not fallback_years,
        "policy_versions": used,
        "total": build_row({"code": top.code, "name": top.name, "level": top.level}, total, weights),
        "rows": rank_rows(rows),
    }
