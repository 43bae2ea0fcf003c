"""The KPI report (kpi.md) as the JSON document of interfaces.md, computed with aggregate SQL.

Three GROUP BY queries over the facts tables of `gateway.reports.facts`, each filtered on the report's
population (the unit's ancestor column, the received-day range, received_at <= as_of) and grouped on the
level's ancestor column; the state of every obligation at `as_of` is a CASE over stored instants. No
record is loaded into Python: the database returns one line per unit (per obligation and policy for the
second query). `kpi.metrics` then turns the counts into rates, score and rank.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import and_, case, func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from gateway.core.time import format_instant, shanghai_date
from gateway.reports.facts import (
    KpiCallbackFact,
    KpiConfig,
    KpiObligationFact,
    KpiRecordFact,
    configured,
    ensure_current,
)
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
    try:
        return configured()
    except (CalendarError, PolicyError) as exc:
        raise KpiConfigError(str(exc)) from None


def _count(condition: ColumnElement[bool]) -> Any:
    return func.sum(case((condition, 1), else_=0))


def _valid_at(model: Any, as_of: datetime) -> ColumnElement[bool]:
    return and_(model.valid_from <= as_of, or_(model.valid_to.is_(None), model.valid_to > as_of))


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
) -> dict[str, Any]:
    """The KPI report document of interfaces.md; ReportError for bad input."""
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

    own_col, row_col = f"u{top.level}", f"u{level}"
    as_of_day = shanghai_date(as_of)

    def population(model: Any) -> ColumnElement[bool]:
        return and_(
            getattr(model, own_col) == unit,
            model.received_day >= date_from,
            model.received_day <= date_to,
            model.received_at <= as_of,
        )

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
            _count(and_(or_(of.fulfilled_at.is_(None), of.fulfilled_at > as_of), of.due_day < as_of_day))
            .label("overdue"),
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
    used = [v.version for v in config.policies.versions if v.version in used_policies]
    return {
        "unit": {"code": top.code, "name": top.name, "level": top.level},
        "level": level,
        "from": date_from.isoformat(),
        "to": date_to.isoformat(),
        "as_of": format_instant(as_of),
        "scheme": scheme_name,
        "calendar_complete": not config.calendar.fallback_years(years_between(date_from, last_due)),
        "policy_versions": used,
        "total": build_row({"code": top.code, "name": top.name, "level": top.level}, total, weights),
        "rows": rank_rows(rows),
    }
