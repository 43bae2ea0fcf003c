"""Recording one handling event of a stored record (the `recordEvent` mutation): the same merge by event id
as a whole record coming in, and the same derived data (KPI facts, flags) in the same transaction."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.complaints.models import Complaint, Event
from gateway.complaints.records import EventIn
from gateway.ingest.store import after_store, merge_events
from gateway.units.models import OrgUnit


class EventRejected(ValueError):
    """The event cannot be recorded; the message names the field (`event.unit`, `event.id`)."""


async def record_event(session: AsyncSession, complaint_id: str, event: EventIn) -> None:
    """Store `event` (already validated against records.md) in the history of the stored record
    `complaint_id`, in the caller's transaction.

    Merged by event id: the same event sent again changes nothing, a changed one replaces its earlier
    version; the history is renumbered by `at` (ties keep arrival order). Side effects: the record's
    `updated_at` becomes now, its KPI facts are derived again and the flag rules run on it. The caller has
    checked that the record exists and is in the caller's jurisdiction.

    Raises EventRejected when `event.unit` is not a known unit, or `event.id` is already an event of
    another record (event ids are unique in the whole system).
    """
    if event.unit is not None and await session.get(OrgUnit, event.unit) is None:
        raise EventRejected(f"event.unit: unknown unit code {event.unit}")
    owner = (await session.execute(select(Event.complaint_id).where(Event.id == event.id))).scalar_one_or_none()
    if owner is not None and owner != complaint_id:
        raise EventRejected(f"event.id: {event.id} is already an event of another record")
    await merge_events(session, {complaint_id: [event]})
    await session.execute(update(Complaint).where(Complaint.id == complaint_id).values(updated_at=datetime.now(UTC)))
    await after_store(session, [complaint_id])
