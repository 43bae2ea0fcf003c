"""A record's status from its events, the same rule in Python (for a record) and SQL (for a filter)."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, exists, not_, or_, select

from gateway.complaints.models import Complaint, Event


class ComplaintStatusValue(StrEnum):
    RECEIVED = "RECEIVED"  # no handling event yet
    IN_PROGRESS = "IN_PROGRESS"
    REJECTED = "REJECTED"  # latest of CLOSED/REJECTED/REOPENED is REJECTED
    CLOSED = "CLOSED"  # latest of CLOSED/REJECTED/REOPENED is CLOSED


_TERMINAL = ("CLOSED", "REJECTED", "REOPENED")


def status_of(event_types: Sequence[str]) -> str:
    """A record's status (ComplaintStatusValue) from its event types in stored order: RECEIVED without events; CLOSED
    or REJECTED when the latest of CLOSED, REJECTED and REOPENED is that; IN_PROGRESS otherwise.
    """
    if not event_types:
        return ComplaintStatusValue.RECEIVED.value
    for t in reversed(event_types):
        if t == "CLOSED":
            return ComplaintStatusValue.CLOSED.value
        if t == "REJECTED":
            return ComplaintStatusValue.REJECTED.value
        if t == "REOPENED":
            break
    return ComplaintStatusValue.IN_PROGRESS.value


def status_condition(status: str) -> Any:
    """SQL over `complaints`: the records whose status (as `status_of` decides it) is `status`."""
    last_terminal = (
        select(Event.type)
        .where(Event.complaint_id == Complaint.id, Event.type.in_(_TERMINAL))
        .order_by(Event.seq.desc())
        .limit(1)
        .scalar_subquery()
    )
    any_event = exists().where(Event.complaint_id == Complaint.id)
    if status == ComplaintStatusValue.RECEIVED:
        return not_(any_event)
    if status == ComplaintStatusValue.CLOSED:
        return last_terminal == "CLOSED"
    if status == ComplaintStatusValue.REJECTED:
        return last_terminal == "REJECTED"
    return and_(any_event, or_(last_terminal.is_(None), last_terminal == "REOPENED"))
