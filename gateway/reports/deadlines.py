"""`Complaint.deadlines` and the `overdue` filter: each obligation of kpi.md with its due date and state.

One record's deadlines are computed by the kpi package's obligation engine from its kind, receipt, real-name
flag and events. The `overdue` filter is SQL over the stored facts (`overdue_condition`), exact at any size:
a record is overdue at `now` when a step of an obligation valid at `now` is unfulfilled at `now` and its due
date is before today (Asia/Shanghai). For a record whose facts no longer change (`last_change_at <= now`,
the usual case) that is `kpi_record_facts.open_due_day < today`; for the others the obligation steps of
`kpi_obligation_facts` are asked.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from gateway.core.time import shanghai_date
from gateway.reports.facts import configured, ensure_current, kpi_config
from gateway.reports.models import KpiObligationFact, KpiRecordFact
from kpi.obligations import OVERDUE, EventIn, RecordIn, deadlines_at, derive


def _facts(complaint: Any, events: list[Any], settings: Any) -> Any:
    # The one calendar and policy cache of the KPI facts: reloaded when either file changes, so deadlines
    # and reports agree after an operator edits the holiday file.
    config = kpi_config(settings.holidays_file, settings.policy_file)
    calendar, policies = config.calendar, config.policies
    record = RecordIn(
        kind=complaint.kind, received_at=complaint.received_at, real_name=complaint.real_name,
        events=[EventIn(e.type, e.at, e.data or {}) for e in events],
    )
    return derive(record, calendar, policies)


def deadlines_of(complaint: Any, events: list[Any], settings: Any, now: datetime | None = None) -> list[dict[str, Any]]:
    """Each started obligation of the record (a row with `kind`, `received_at`, `real_name`) given its `events` (rows
    with `type`, `at`, `data`, in stored order), as of `now` (default: now): code, starts_at, due_date (a calendar
    day), fulfilled_at, state (ON_TIME, LATE, OVERDUE, PENDING) and policy_version. The calendar and policies are
    those of `settings`, from the one cache the KPI facts use.
    """
    facts = _facts(complaint, events, settings)
    as_of = now or datetime.now(UTC)
    starts: dict[str, datetime] = {}
    for step in facts.obligations:
        starts.setdefault(step.obligation, step.valid_from)
    return [
        {
            "code": d.obligation, "starts_at": starts[d.obligation], "due_date": d.due_day,
            "fulfilled_at": d.fulfilled_at, "state": d.state, "policy_version": d.policy,
        }
        for d in deadlines_at(facts, as_of)
    ]


def is_overdue(complaint: Any, events: list[Any], settings: Any, now: datetime) -> bool:
    """True when an obligation of the record is OVERDUE at `now`."""
    return any(d["state"] == OVERDUE for d in deadlines_of(complaint, events, settings, now))


def overdue_condition(complaint_id: Any, now: datetime) -> ColumnElement[bool]:
    """SQL: the record whose id is the column `complaint_id` has an OVERDUE obligation at `now` (as
    `is_overdue`, from the stored facts). Facts must be current (`ensure_facts_current`)."""
    rf, of = KpiRecordFact, KpiObligationFact
    today = shanghai_date(now)
    step_overdue = exists(
        select(of.complaint_id).where(
            of.complaint_id == rf.complaint_id, of.valid_from <= now,
            or_(of.valid_to.is_(None), of.valid_to > now),
            or_(of.fulfilled_at.is_(None), of.fulfilled_at > now), of.due_day < today,
        )
    )
    return exists(
        select(rf.complaint_id).where(
            rf.complaint_id == complaint_id,
            or_(and_(rf.last_change_at <= now, rf.open_due_day < today), and_(rf.last_change_at > now, step_overdue)),
        )
    )


async def ensure_facts_current(engine: AsyncEngine) -> None:
    """Derive the facts again, in a transaction of their own, if the calendar or policy files changed since
    they were stored (so that stored due dates are those `deadlines_of` would give)."""
    async with AsyncSession(engine) as session, session.begin():
        await ensure_current(session, configured())
