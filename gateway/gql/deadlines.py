"""`Complaint.deadlines`: each obligation of kpi.md with its due date and state, computed by the kpi package."""

from __future__ import annotations

from typing import Any

from gateway.gql import errors


def deadlines_of(complaint: Any, events: list[Any]) -> list[Any]:
    raise errors.not_implemented("deadlines (the kpi package's obligation engine)")


def overdue_condition(overdue: bool) -> Any:
    raise errors.not_implemented("the overdue filter (the kpi package's obligation engine)")
