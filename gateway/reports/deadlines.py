"""`Complaint.deadlines` and the `overdue` filter: each obligation of kpi.md with its due date and state,
computed by the kpi package's obligation engine from the record's kind, receipt, real-name flag and events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.reports.facts import kpi_config
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
