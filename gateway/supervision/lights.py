"""Deadline lights (时限预警, supervision.md): red, yellow or green for every open obligation.

Computed in the database from the KPI facts the report reads, with the report's own conditions
(`gateway.reports.build.unfulfilled_at` / `overdue_at`) and, at the levels the report rolls up, its own
rollups (`kpi_open_rollup`, corrected for the records still changing after `as_of`), so that a light and a
report state at the same `as_of` cannot disagree: RED is exactly the report's OVERDUE. Both first make the
facts current with the one calendar (`gateway.reports.build.ensure_facts`).

No working-day arithmetic runs in SQL. Since every working day up to a due date counts one, "days_left <=
GATEWAY_YELLOW_DAYS (Y)" is "due date before the (Y+1)-th working day after as_of's date", so each query
compares `due_day` with two dates taken once from the one calendar (`gateway.reports.facts.kpi_config`):

    RED     due_day <  as_of's date
    YELLOW  as_of's date <= due_day < the (Y+1)-th working day after as_of's date
    GREEN   otherwise

`daysLeft` of the at most 500 nodes of a `deadlineWatch` page is the calendar's index difference (one
subtraction per node; `WorkCalendar.workdays_between`). Nothing loops over a unit's obligations in Python.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from gateway.core.auth import Principal
from gateway.core.cursor import decode_position, encode_position
from gateway.core.time import shanghai_date
from gateway.reports.build import ensure_facts, unfulfilled_at
from gateway.reports.facts import KpiConfig
from gateway.reports.models import ROLLUP_DEPTHS, KpiObligationFact, KpiRecordFact, kpi_open_rollup
from gateway.supervision.access import (
    BAD_USER_INPUT,
    WATCH_ROLES,
    SupervisionError,
    caller_and_unit,
    check_first,
    require_any,
    subtree,
)
from gateway.units.models import OrgUnit
from kpi.calendar import CalendarError, WorkCalendar
from kpi.policies import OBLIGATIONS

RED, YELLOW, GREEN = "RED", "YELLOW", "GREEN"
FACT_ANCESTORS = KpiObligationFact.ancestor_columns()
LIGHTS = (RED, YELLOW, GREEN)


@dataclass(frozen=True, slots=True)
class LightDates:
    """The two dates a light is a comparison with."""

    as_of_day: date  # due before it: RED
    green_from: date  # the (Y+1)-th working day after as_of_day: due before it (and not RED): YELLOW

    @classmethod
    def of(cls, calendar: WorkCalendar, as_of: datetime, yellow_days: int) -> LightDates:
        day = shanghai_date(as_of)
        try:
            return cls(day, calendar.add_workdays(day, yellow_days + 1))
        except CalendarError as exc:
            raise SupervisionError(f"asOf: {exc}", BAD_USER_INPUT, "asOf") from None

    def light(self, due: Any = KpiObligationFact.due_day) -> Any:
        """SQL: the light of an open obligation due on the date column `due`."""
        return case((due < self.as_of_day, RED), (due < self.green_from, YELLOW), else_=GREEN)

    def only(self, light: str) -> ColumnElement[bool]:
        """SQL: open obligations of this light (ranges over due_day, index-friendly)."""
        due = KpiObligationFact.due_day
        if light == RED:
            return due < self.as_of_day
        if light == YELLOW:
            return and_(due >= self.as_of_day, due < self.green_from)
        return due >= self.green_from


def _as_of(as_of: datetime | None) -> datetime:
    if as_of is None:
        return datetime.now(UTC)
    if as_of.tzinfo is None:
        raise SupervisionError("asOf: give an offset, e.g. 2024-06-30T23:59:59+08:00", BAD_USER_INPUT, "asOf")
    return as_of


@dataclass(frozen=True, slots=True)
class LightRow:
    unit: Any  # the org_units row
    red: int
    yellow: int
    green: int


def _by_light(light: Any, weight: Any = 1) -> list[Any]:
    """SQL: one sum per light (RED, YELLOW, GREEN) of `weight` over the rows of that light."""
    return [func.sum(case((light == name, weight), else_=0)).label(name.lower()) for name in LIGHTS]


async def _open_counts(session: AsyncSession, top: Any, level: int, when: datetime,
                       dates: LightDates) -> dict[str | None, tuple[int, int, int]]:
    """(red, yellow, green) of the open obligations at `when` in `top`'s subtree, by the unit of `level`
    (None: obligations of records handled above that level).

    At a level the report rolls up (`ROLLUP_DEPTHS`), the report's own three steps: the open-obligation
    rollup (each record's final view: the obligations no event fulfils, by due day), corrected for the
    records whose facts still change after `when` (their open obligations at `when` less those of their
    final view). So the lights cost what the report costs, by units and days, not by records. At other
    levels, the obligation facts of the subtree, as the report reads them there."""
    of, rf = KpiObligationFact, KpiRecordFact
    counts: dict[str | None, list[int]] = defaultdict(lambda: [0, 0, 0])

    def add(rows: Any) -> None:
        for row in rows:
            for i, n in enumerate((row.red, row.yellow, row.green)):
                counts[row.unit or None][i] += int(n or 0)

    if level not in ROLLUP_DEPTHS:
        light = dates.light(of.due_day)
        add(await session.execute(
            select(getattr(of, f"u{level}").label("unit"), *_by_light(light))
            .where(subtree(top).condition(of.ancestor_columns()), unfulfilled_at(when))
            .group_by(getattr(of, f"u{level}"))
        ))
        return {k: (v[0], v[1], v[2]) for k, v in counts.items()}

    ro = kpi_open_rollup
    add(await session.execute(
        select(ro.c[f"u{level}"].label("unit"), *_by_light(dates.light(ro.c.due_day), ro.c.open))
        .where(ro.c.depth == level, *(ro.c[f"u{n}"] == getattr(top, f"l{n}") for n in range(1, top.level + 1)))
        .group_by(ro.c[f"u{level}"])
    ))
    changing = select(rf.complaint_id).where(subtree(top).condition(rf.ancestor_columns()), rf.last_change_at > when)
    light = dates.light(of.due_day)
    final_open = and_(of.valid_to.is_(None), of.fulfilled_at.is_(None))  # what the rollup counted
    open_now = unfulfilled_at(when)
    add(await session.execute(
        select(
            getattr(of, f"u{level}").label("unit"),
            *(func.sum(case((and_(open_now, light == name), 1), else_=0)
                       - case((and_(final_open, light == name), 1), else_=0)).label(name.lower())
              for name in LIGHTS),
        )
        .where(of.complaint_id.in_(changing))
        .group_by(getattr(of, f"u{level}"))
    ))
    return {k: (v[0], v[1], v[2]) for k, v in counts.items()}


async def deadline_lights(
    session: AsyncSession, principal: Principal, unit: str, level: int | None, as_of: datetime | None,
    config: KpiConfig, yellow_days: int,
) -> list[LightRow]:
    """`deadlineLights`: red/yellow/green counts of the open obligations for each unit at `level` inside
    `unit` (default the level below; units without any included, by code), then the whole subtree as the
    last row (`unit` itself). A level-5 unit without `level` gets the last row only.

    Roles supervisor or evaluator; `unit` must be the caller's or below it (FORBIDDEN). BAD_USER_INPUT for a
    level not in (unit's level, 5]. Two GROUP BY queries (`_open_counts`) and one over the units."""
    require_any(principal, WATCH_ROLES)
    _, top = await caller_and_unit(session, principal, unit)
    when = _as_of(as_of)
    dates = LightDates.of(config.calendar, when, yellow_days)
    if level is None:
        level = top.level + 1 if top.level < 5 else None
    elif not top.level < level <= 5:
        raise SupervisionError(f"level must be below the unit's level {top.level} and at most 5, got {level}",
                               BAD_USER_INPUT, "level")
    await ensure_facts(session, config)
    counts = await _open_counts(session, top, level or top.level, when, dates)
    total = tuple(sum(c[i] for c in counts.values()) for i in range(3))
    rows: list[LightRow] = []
    if level is not None:
        units = await session.execute(
            select(OrgUnit.__table__)
            .where(subtree(top).condition(OrgUnit.ancestor_columns()), OrgUnit.level == level)
            .order_by(OrgUnit.code)
        )
        rows = [LightRow(u, *counts.get(u.code, (0, 0, 0))) for u in units]
    return [*rows, LightRow(top, *total)]


@dataclass(frozen=True, slots=True)
class WatchNode:
    complaint_id: str
    code: str
    due_date: date
    days_left: int
    light: str

    @property
    def cursor(self) -> str:
        return encode_position([self.due_date.isoformat(), self.complaint_id, self.code])


@dataclass
class WatchPage:
    nodes: list[WatchNode]
    has_next: bool
    count_query: Any  # every matching obligation, run only when totalCount is asked for

    async def total_count(self, session: AsyncSession) -> int:
        return int((await session.execute(self.count_query)).scalar_one())


def _decode(cursor: str) -> tuple[date, str, str]:
    try:
        day, cid, code = decode_position(cursor, 3)
        if code not in OBLIGATIONS:
            raise ValueError
        return date.fromisoformat(day), cid, code
    except Exception:
        raise SupervisionError("after: not a cursor of this list", BAD_USER_INPUT, "after") from None


async def deadline_watch(
    session: AsyncSession, principal: Principal, unit: str, light: str | None, code: str | None,
    as_of: datetime | None, first: int | None, after: str | None, config: KpiConfig, yellow_days: int,
) -> WatchPage:
    """`deadlineWatch`: the open obligations of the records in `unit`'s subtree, narrowed to one light and
    one obligation code when given, ordered by due date, record id, code; `first` (0–500, default 50) after
    the cursor `after`.

    Roles supervisor or evaluator; FORBIDDEN outside the caller's jurisdiction; BAD_USER_INPUT for a bad
    cursor, page size or light. One query over the subtree's obligation facts per page (and one for
    totalCount, when asked)."""
    require_any(principal, WATCH_ROLES)
    size = check_first(first)
    if light is not None and light not in LIGHTS:
        raise SupervisionError(f"light must be one of {', '.join(LIGHTS)}", BAD_USER_INPUT, "light")
    if code is not None and code not in OBLIGATIONS:
        raise SupervisionError(f"code must be one of {', '.join(OBLIGATIONS)}", BAD_USER_INPUT, "code")
    when = _as_of(as_of)
    dates = LightDates.of(config.calendar, when, yellow_days)
    of = KpiObligationFact
    _, top = await caller_and_unit(session, principal, unit)
    await ensure_facts(session, config)
    conditions: list[Any] = [subtree(top).condition(FACT_ANCESTORS), unfulfilled_at(when)]
    if light is not None:
        conditions.append(dates.only(light))
    if code is not None:
        conditions.append(of.obligation == code)
    count_query = select(func.count()).select_from(of).where(*conditions)
    page_conditions = list(conditions)
    if after:
        day, cid, ob = _decode(after)
        page_conditions.append(or_(
            of.due_day > day,
            and_(of.due_day == day, of.complaint_id > cid),
            and_(of.due_day == day, of.complaint_id == cid, of.obligation > ob),
        ))
    rows = (await session.execute(
        select(of.complaint_id, of.obligation, of.due_day, dates.light().label("light"))
        .where(*page_conditions)
        .order_by(of.due_day, of.complaint_id, of.obligation)
        .limit(size + 1)
    )).all() if size else []
    calendar = config.calendar
    nodes = [
        WatchNode(r.complaint_id, r.obligation, r.due_day, calendar.workdays_between(dates.as_of_day, r.due_day),
                  r.light)
        for r in rows[:size]
    ]
    return WatchPage(nodes, len(rows) > size, count_query)
