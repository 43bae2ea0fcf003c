"""The KPI report (kpi.md) as the JSON document of interfaces.md, computed with aggregate SQL.

Its cost follows the units and days it covers, not the records in them (docs/kpi.md, "Facts tables and the
report"): the rollups (`gateway.reports.rollups`) give every record's final view summed by unit and day; the
open-obligation rollup takes away what is not yet due at `as_of`; the records whose facts still change after
`as_of` (received or with events after it: few, unless `as_of` is in the past) are corrected one by one in
SQL from the facts tables. No record is loaded into Python. `kpi.metrics` turns the counts into rates, score
and rank. The record-by-record reference of tests/kpi_reference.py is the judge of this engine.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Date, String, and_, bindparam, case, extract, func, literal, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from gateway.core.db import UTCDateTime
from gateway.core.time import format_instant, shanghai_date
from gateway.reports.facts import KpiConfig, configured, ensure_current
from gateway.reports.models import (
    ROLLUP_DEPTHS,
    ROLLUP_MEASURES,
    STATES,
    KpiCallbackFact,
    KpiObligationFact,
    KpiRecordFact,
    kpi_open_rollup,
    kpi_rollup,
)
from gateway.reports.rollups import final_measures
from gateway.units.jurisdiction import Jurisdiction
from gateway.units.models import OrgUnit
from kpi.calendar import CalendarError, years_between
from kpi.metrics import CHANNELS, HOTLINES, KINDS, RowCounts, build_row
from kpi.obligations import SATISFIED_VALUES, UNREACHABLE
from kpi.policies import DEFAULT_SCHEME, OBLIGATIONS, PolicyError
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


def _valid_at(model: Any, as_of: Any) -> ColumnElement[bool]:
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
            Jurisdiction(self.unit, self.unit_level).condition(model.ancestor_columns()),
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


async def ensure_facts(session: AsyncSession, config: KpiConfig) -> None:
    """Facts derived with another calendar or policy set are derived again, in a transaction of their own
    that commits before the caller reads (the caller's session may never commit). Reports and the deadline
    lights call it first, so both read facts of the same calendar."""
    bind = session.bind
    if bind is None:
        await ensure_current(session, config)
        return
    async with AsyncSession(bind) as own, own.begin():
        await ensure_current(own, config)


@dataclass
class _Found:
    counts: dict[str | None, RowCounts] = field(default_factory=lambda: defaultdict(RowCounts))
    # (policy set key, year of the latest due date) -> records of the population with that final view
    views: dict[tuple[str, int], int] = field(default_factory=lambda: defaultdict(int))
    active_policies: set[str] = field(default_factory=set)
    active_last_due: date | None = None

    @property
    def policies(self) -> set[str]:
        out = set(self.active_policies)
        for (key, _), n in self.views.items():
            if n > 0:
                out.update(json.loads(key))
        return out

    @property
    def last_due(self) -> date | None:
        years = [year for (_, year), n in self.views.items() if n > 0 and year]
        candidates = [date(max(years), 1, 1)] if years else []  # only the year matters (calendar_complete)
        if self.active_last_due is not None:
            candidates.append(self.active_last_due)
        return max(candidates) if candidates else None


def _add_measures(c: RowCounts, row: Any, sign: int = 1) -> None:
    """Add a row of rollup measures (named as ROLLUP_MEASURES; absent ones count 0) to counts."""
    get = row.get if hasattr(row, "get") else row._mapping.get

    def n(name: str) -> int:
        return sign * int(get(name) or 0)

    c.received += n("records")
    for k in KINDS:
        c.by_kind[k] += n(f"kind_{k.lower()}")
    for k in CHANNELS:
        c.by_channel[k] += n(f"channel_{k.lower()}")
    for k in HOTLINES:
        c.by_hotline[k] += n(f"hotline_{k}")
    for name in ("reply_owed", "replied", "concluded", "called_back", "mediation_outcomes", "mediation_succeeded",
                 "decided", "case_filed", "callback_reachable", "satisfied", "recovered_cents"):
        setattr(c, name, getattr(c, name) + n(name))
    for code in OBLIGATIONS:
        triple = c.obligations[code]
        for i, state in enumerate(STATES):
            triple[i] += n(f"{code.lower()}_{state}")


def _at_measures(r: Any, as_of: Any) -> dict[str, Any]:
    """Per record of `kpi_record_facts`: the measures that table holds, as of `as_of` (0 outside the
    population). Satisfaction and obligations at `as_of` come from their own tables."""
    pop = r.received_at <= as_of

    def flag(*conditions: ColumnElement[bool]) -> Any:
        return case((and_(pop, *conditions), 1), else_=0)

    out: dict[str, Any] = {"records": flag()}
    out |= {f"kind_{k.lower()}": flag(r.kind == k) for k in KINDS}
    out |= {f"channel_{c.lower()}": flag(r.channel == c) for c in CHANNELS}
    out |= {f"hotline_{h}": flag(r.hotline == h) for h in HOTLINES}
    return out | {
        "reply_owed": flag(r.reply_owed_at <= as_of),
        "replied": flag(r.replied_at <= as_of),
        "concluded": flag(r.concluded_at <= as_of),
        "called_back": flag(r.concluded_at <= as_of, r.first_callback_at <= as_of),
        "mediation_outcomes": flag(r.mediation_outcome_at <= as_of),
        "mediation_succeeded": flag(r.mediation_outcome_at <= as_of, r.mediation_succeeded),
        "decided": flag(r.decided_at <= as_of),
        "case_filed": flag(r.decided_at <= as_of, r.case_filed),
        "recovered_cents": case((pop, r.recovered_cents), else_=0),
    }


@dataclass(frozen=True)
class _Statements:
    rolled: bool  # rows from rollups (else from every record's facts)
    rollup: Any
    open_steps: Any
    active_records: Any
    active_steps: Any
    active_callbacks: Any


@lru_cache(maxsize=32)
def _statements(own_level: int, level: int) -> _Statements:
    """The report's queries for a unit of `own_level` by rows of `level`, built once: the values travel as
    parameters (a1..a<own_level> the unit and its ancestors, date_from, date_to, as_of, as_of_day)."""
    row_col = f"u{level}"
    date_from, date_to = bindparam("date_from", type_=Date()), bindparam("date_to", type_=Date())
    as_of, as_of_day = bindparam("as_of", type_=UTCDateTime()), bindparam("as_of_day", type_=Date())
    ancestors = [bindparam(f"a{n}", type_=String()) for n in range(1, own_level + 1)]

    # 1. Every record's final view, summed by unit and day.
    ru = kpi_rollup
    rollup = (
        select(ru.c[row_col].label("unit"), ru.c.policies, ru.c.due_year,
               *(func.sum(ru.c[m]).label(m) for m in ROLLUP_MEASURES))
        .where(ru.c.depth == level, *(ru.c[f"u{n}"] == a for n, a in enumerate(ancestors, 1)),
               ru.c.received_day >= date_from, ru.c.received_day <= date_to)
        .group_by(ru.c[row_col], ru.c.policies, ru.c.due_year)
    )

    # 2. Obligations no event fulfils, not yet due at as_of: PENDING there, counted OVERDUE in the final view.
    ro = kpi_open_rollup
    open_steps = (
        select(ro.c[row_col].label("unit"), ro.c.obligation, func.sum(ro.c.open).label("open"))
        .where(ro.c.depth == level, *(ro.c[f"u{n}"] == a for n, a in enumerate(ancestors, 1)),
               ro.c.received_day >= date_from, ro.c.received_day <= date_to, ro.c.due_day >= as_of_day)
        .group_by(ro.c[row_col], ro.c.obligation)
    )

    # 3. Records whose facts change after as_of (received after it, or events after it): as of as_of, less
    #    their final view, plus their open obligations that step 2 took away. Levels without rollups: every
    #    record of the population, as of as_of.
    rolled = level in ROLLUP_DEPTHS
    rf, of, cf = KpiRecordFact, KpiObligationFact, KpiCallbackFact
    # The population's own-level ancestor is a parameter here (the statement is built once per level pair).
    active = and_(getattr(rf, f"u{own_level}") == ancestors[-1], rf.received_day >= date_from,
                  rf.received_day <= date_to, *([rf.last_change_at > as_of] if rolled else []))
    final = final_measures(rf)
    at = _at_measures(rf, as_of)
    due_year = func.coalesce(extract("year", rf.last_due_day), 0)

    def correction(m: str) -> Any:
        if not rolled:
            return at.get(m, literal(0))
        return at[m] - final[m] if m in at else -final[m]

    active_records = (
        select(getattr(rf, row_col).label("unit"), rf.final_policies, due_year.label("due_year"),
               *(func.sum(correction(m)).label(m) for m in ROLLUP_MEASURES), func.count().label("active"))
        .where(active)
        .group_by(getattr(rf, row_col), rf.final_policies, due_year)
    )
    active_ids = select(rf.complaint_id).where(active)

    def own_rows(model: Any) -> list[ColumnElement[bool]]:
        # The report's unit and days on the table itself: its (unit, day) index narrows the rows, where a
        # join to the records' table alone could read every step of the database.
        return [getattr(model, f"u{own_level}") == ancestors[-1], model.received_day >= date_from,
                model.received_day <= date_to]

    if rolled:
        # The records changing after as_of are few, found by the last_change_at index; SQLite's planner,
        # without PostgreSQL's range statistics, may otherwise scan every record of the unit.
        hint = "INDEXED BY ix_kpi_record_facts_last_change"
        active_records = active_records.with_hint(rf, hint, "sqlite")
        active_ids = active_ids.with_hint(rf, hint, "sqlite")

    pop_of = and_(of.received_at <= as_of, _valid_at(of, as_of))
    fulfilled = of.fulfilled_at <= as_of
    still_open = and_(of.valid_to.is_(None), of.fulfilled_at.is_(None), of.due_day >= as_of_day)
    active_steps = (
        select(
            getattr(of, row_col).label("unit"), of.obligation, of.policy,
            _count(and_(pop_of, fulfilled, of.on_time)).label("on_time"),
            _count(and_(pop_of, fulfilled, not_(of.on_time))).label("late"),
            (_count(and_(pop_of, or_(of.fulfilled_at.is_(None), of.fulfilled_at > as_of), of.due_day < as_of_day))
             + (_count(still_open) if rolled else literal(0))).label("overdue"),
            _count(pop_of).label("valid"),
            func.max(case((pop_of, of.due_day))).label("last_due"),
        )
        .where(*own_rows(of), *([of.complaint_id.in_(active_ids)] if rolled else []))
        .group_by(getattr(of, row_col), of.obligation, of.policy)
    )

    pop_cf = and_(cf.received_at <= as_of, _valid_at(cf, as_of))
    active_callbacks = (
        select(
            getattr(cf, row_col).label("unit"),
            _count(and_(pop_cf, cf.satisfaction != UNREACHABLE)).label("callback_reachable"),
            _count(and_(pop_cf, cf.satisfaction.in_(sorted(SATISFIED_VALUES)))).label("satisfied"),
        )
        .where(*own_rows(cf), *([cf.complaint_id.in_(active_ids)] if rolled else []))
        .group_by(getattr(cf, row_col))
    )
    return _Statements(rolled, rollup, open_steps, active_records, active_steps, active_callbacks)


async def _quiet_last_due(session: AsyncSession, scope: ReportScope) -> date:
    """The latest due date of the report's records whose facts no longer change at `as_of` (their last
    steps'), read record by record: only for the page's explanation (`details`), not for the document."""
    rf = KpiRecordFact
    found = (await session.execute(
        select(func.max(rf.last_due_day)).where(scope.population(rf), rf.last_change_at <= scope.as_of)
    )).scalar()
    return found or scope.date_to


async def _read_counts(session: AsyncSession, ancestors: list[str], level: int, date_from: date, date_to: date,
                       as_of: datetime) -> _Found:
    """The counts of every row of a report: rollups, less open obligations not yet due, corrected for the
    records whose facts still change after `as_of` (docs/kpi.md, "Facts tables and the report")."""
    found = _Found()
    st = _statements(len(ancestors), level)
    params: dict[str, Any] = {f"a{n}": code for n, code in enumerate(ancestors, 1)}
    params |= {"date_from": date_from, "date_to": date_to, "as_of": as_of, "as_of_day": shanghai_date(as_of)}

    if st.rolled:
        for row in (await session.execute(st.rollup, params)).mappings():
            _add_measures(found.counts[row["unit"] or None], row)
            found.views[(row["policies"], int(row["due_year"]))] += int(row["records"])
        for row in (await session.execute(st.open_steps, params)).mappings():
            found.counts[row["unit"] or None].obligations[row["obligation"]][2] -= int(row["open"])

    any_active = False
    for row in (await session.execute(st.active_records, params)).mappings():
        any_active = True
        _add_measures(found.counts[row["unit"]], row)
        if st.rolled:
            found.views[(row["final_policies"], int(row["due_year"]))] -= int(row["active"])
    if not any_active:
        return found
    for row in (await session.execute(st.active_steps, params)).mappings():
        triple = found.counts[row["unit"]].obligations[row["obligation"]]
        for i, state in enumerate(STATES):
            triple[i] += int(row[state])
        if row["valid"]:
            found.active_policies.add(row["policy"])
            due = row["last_due"]
            found.active_last_due = due if found.active_last_due is None else max(found.active_last_due, due)
    for row in (await session.execute(st.active_callbacks, params)).mappings():
        _add_measures(found.counts[row["unit"]], row)
    return found


@dataclass(frozen=True, slots=True)
class _Checked:
    """A report's arguments, checked: the unit's row, the rows' level, the scheme and its weights."""

    top: Any  # the unit's row: code, name, level, l1..l5
    level: int
    date_from: date
    date_to: date
    as_of: datetime
    scheme: str
    weights: Any


async def _check(
    session: AsyncSession, config: KpiConfig, unit: str, level: int | None, date_from: date | None,
    date_to: date | None, as_of: datetime | None, scheme: str | None,
) -> _Checked:
    """The arguments of `build_report` checked against the configuration and the unit table; ReportError
    (BAD_USER_INPUT, or NOT_FOUND for an unknown unit) naming what is wrong."""
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
    top = (await session.execute(
        select(OrgUnit.code, OrgUnit.name, OrgUnit.level, OrgUnit.l1, OrgUnit.l2, OrgUnit.l3, OrgUnit.l4, OrgUnit.l5)
        .where(OrgUnit.code == unit)
    )).first()
    if top is None:
        raise ReportError(f"unknown unit {unit}", code="NOT_FOUND")
    if level is None:
        level = top.level + 1
    if not top.level < level <= 5:
        raise ReportError(
            f"level must be below the unit's level {top.level} and at most 5, got {level}"
            if top.level < 5 else f"unit {unit} is a level-5 unit: it has no units below it to report on"
        )
    return _Checked(top, level, date_from, date_to, as_of, scheme_name, weights)


async def _row_units(session: AsyncSession, checked: _Checked) -> list[Any]:
    """The units of the report's rows: every unit at the rows' level below the report's unit, by code."""
    top = checked.top
    return list((
        await session.execute(
            select(OrgUnit.code, OrgUnit.name, OrgUnit.level)
            .where(Jurisdiction(top.code, top.level).condition(OrgUnit.ancestor_columns()),
                   OrgUnit.level == checked.level)
            .order_by(OrgUnit.code)
        )
    ).all())


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
    """The KPI report document of interfaces.md for `unit`, one row per unit at `level` (default: the level
    below), records received on days [date_from, date_to] (Asia/Shanghai), everything as known at `as_of`
    (default: now), scored by `scheme` (default: `default`). ReportError for bad input (NOT_FOUND for an
    unknown unit); KpiConfigError when the configured calendar or policy file cannot be used.

    Side effect: facts derived with another calendar or policy set are derived again first, in a transaction
    of their own. Reads only otherwise.

    `details`, when given, receives what the document does not carry but a page explains:
    `calendar_fallback_years` (the years its due dates reach that the calendar does not cover) and
    `last_due` (the latest due date among its obligations).

    `orders` counts the supervision orders of each row (`gateway.supervision.report.count_orders`): this
    package cannot import the supervision package above it, so the API and CLI hand the counter in. Without
    it every row's `supervision` block is zeros."""
    config = config or load_config()
    checked = await _check(session, config, unit, level, date_from, date_to, as_of, scheme)
    top, level, as_of = checked.top, checked.level, checked.as_of
    date_from, date_to = checked.date_from, checked.date_to
    await ensure_facts(session, config)

    scope = ReportScope(unit, top.level, level, date_from, date_to, as_of)
    ancestors = [getattr(top, f"l{n}") for n in range(1, top.level + 1)]
    found = await _read_counts(session, ancestors, level, date_from, date_to, as_of)
    counts = found.counts
    last_due = max(date_to, found.last_due or date_to)  # its year is exact, what calendar_complete needs
    if details is not None and level in ROLLUP_DEPTHS:
        last_due = max(last_due, await _quiet_last_due(session, scope))  # the day too, for the page

    order_total = [0, 0, 0, 0]
    if orders is not None:
        by_row, order_total = await orders(session, scope)
        for code, four in by_row.items():
            counts[code].supervision = list(four)

    rows = [build_row({"code": u.code, "name": u.name, "level": u.level}, counts.get(u.code, RowCounts()),
                      checked.weights)
            for u in await _row_units(session, checked)]
    total = RowCounts()
    for c in counts.values():  # rows, plus records handled by the unit itself or above the level
        total.add(c)
    total.supervision = list(order_total)  # an order on records of several rows is one order here
    used = [v.version for v in config.policies.versions if v.version in found.policies]
    fallback_years = config.calendar.fallback_years(years_between(date_from, last_due))
    if details is not None:
        details.update(calendar_fallback_years=fallback_years, last_due=last_due)
    return {
        "unit": {"code": top.code, "name": top.name, "level": top.level},
        "level": level,
        "from": date_from.isoformat(),
        "to": date_to.isoformat(),
        "as_of": format_instant(as_of),
        "scheme": checked.scheme,
        "calendar_complete": not fallback_years,
        "policy_versions": used,
        "total": build_row({"code": top.code, "name": top.name, "level": top.level}, total, checked.weights),
        "rows": rank_rows(rows),
    }
