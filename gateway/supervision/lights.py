"""Deadline lights (时限预警, supervision.md): red, yellow or green for every open obligation.

Computed in the database over the KPI facts (`kpi_obligation_facts`), with the report's own conditions
(`gateway.reports.build.unfulfilled_at` / `overdue_at`), so that a light and a report state at the same
`as_of` cannot disagree: RED is exactly the report's OVERDUE.

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

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from gateway.core.auth import Principal
from gateway.core.cursor import decode_position, encode_position
from gateway.core.time import shanghai_date
from gateway.reports.build import unfulfilled_at
from gateway.reports.facts import KpiConfig
from gateway.reports.models import KpiObligationFact
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

    def light(self) -> Any:
        """SQL: the light of an open obligation row."""
        due = KpiObligationFact.due_day
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


async def deadline_lights(
    session: AsyncSession, principal: Principal, unit: str, level: int | None, as_of: datetime | None,
    config: KpiConfig, yellow_days: int,
) -> list[LightRow]:
    """`deadlineLights`: red/yellow/green counts of the open obligations for each unit at `level` inside
    `unit` (default the level below; units without any included, by code), then the whole subtree as the
    last row (`unit` itself). A level-5 unit without `level` gets the last row only.

    Roles supervisor or evaluator; `unit` must be the caller's or below it (FORBIDDEN). BAD_USER_INPUT for a
    level not in (unit's level, 5]. One GROUP BY query over the obligation facts and one over the units."""
    require_any(principal, WATCH_ROLES)
    _, top = await caller_and_unit(session, principal, unit)
    when = _as_of(as_of)
    dates = LightDates.of(config.calendar, when, yellow_days)
    if level is None:
        level = top.level + 1 if top.level < 5 else None
    elif not top.level < level <= 5:
        raise SupervisionError(f"level must be below the unit's level {top.level} and at most 5, got {level}",
                               BAD_USER_INPUT, "level")
    of = KpiObligationFact
    light = dates.light()
    group = getattr(of, f"u{level}") if level is not None else of.u1
    query = (
        select(
            group.label("unit"),
            func.sum(case((light == RED, 1), else_=0)).label("red"),
            func.sum(case((light == YELLOW, 1), else_=0)).label("yellow"),
            func.sum(case((light == GREEN, 1), else_=0)).label("green"),
        )
        .where(subtree(top).condition(FACT_ANCESTORS), unfulfilled_at(when))
        .group_by(group)
    )
    counts = {r.unit: (int(r.red), int(r.yellow), int(r.green)) for r in await session.execute(query)}
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
    cursor, page size or light. One indexed range query per page."""
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
