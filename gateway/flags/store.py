"""Reading and re-homing stored flags: the pull API of `creditFlags` (`list_flags`, the flag joined with
its credit outbox item) and what a unit move does to flags and alerts already raised (`rehome_flags_and_alerts`).
The tables are in `gateway.flags.models`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.core.cursor import decode_cursor, encode_cursor
from gateway.core.db import chunked
from gateway.flags.models import CREDIT, PENDING, AlertRow, FlagRow, OutboxItem
from gateway.units.jurisdiction import Jurisdiction
from gateway.units.models import OrgUnit

# ------------------------------------------------------------------------------------------- unit moves

async def rehome_flags_and_alerts(session: AsyncSession, moved: Collection[str]) -> None:
    """After units moved in the tree: the issuing unit's ancestors of every flag issued by one of the
    `moved` unit codes (`i1`..`i5`), and the county's ancestors of every alert of one (`a1`..`a3`), read
    again from `org_units`, in the caller's transaction. The flag itself (its id, `issued_by`, what was
    sent) stays: only who may see it follows the tree."""
    for chunk in chunked(sorted(set(moved))):
        await session.execute(
            update(FlagRow).where(FlagRow.issued_by.in_(chunk)).values(**{
                f"i{n}": select(getattr(OrgUnit, f"l{n}")).where(OrgUnit.code == FlagRow.issued_by).scalar_subquery()
                for n in range(1, 6)
            }).execution_options(synchronize_session=False)
        )
        await session.execute(
            update(AlertRow).where(AlertRow.unit_code.in_(chunk)).values(**{
                f"a{n}": select(getattr(OrgUnit, f"l{n}")).where(OrgUnit.code == AlertRow.unit_code).scalar_subquery()
                for n in range(1, 4)
            }).execution_options(synchronize_session=False)
        )


# ----------------------------------------------------------------------------------------------- pull API


@dataclass(frozen=True, slots=True)
class FlagView:
    flag_id: str
    uscc: str
    reason: str
    severity: str  # current finding
    complaint_ids: list[str]
    window_start: datetime
    window_end: datetime
    issued_by: str
    issued_at: datetime
    updated_at: datetime
    escalated_at: datetime | None
    delivery_state: str  # PENDING, DELIVERED or FAILED
    delivery_attempts: int
    delivered_at: datetime | None
    delivered_severity: str | None  # what the credit system holds (or will): the payload of the first attempt
    last_error: str | None
    cursor: str


@dataclass(frozen=True, slots=True)
class FlagPage:
    items: list[FlagView]
    end_cursor: str | None
    has_next_page: bool


async def list_flags(
    session: AsyncSession,
    since: datetime | None = None,
    first: int = 50,
    after: str | None = None,
    jurisdiction: Jurisdiction | None = None,
) -> FlagPage:
    """Flags raised or escalated at or after `since`, oldest change first, with their delivery state.

    `jurisdiction` is the caller's: only flags issued by its unit or below it are listed; None lists all.
    A flag escalated later reappears at its new place in the order, like a changes feed.
    ValueError for a bad cursor or `first` outside 1..500.
    """
    if not 1 <= first <= 500:
        raise ValueError("first must be between 1 and 500")
    query = (
        select(FlagRow, OutboxItem)
        .join(OutboxItem, and_(OutboxItem.system == CREDIT, OutboxItem.key == FlagRow.flag_id), isouter=True)
        .order_by(FlagRow.updated_at, FlagRow.flag_id)
        .limit(first + 1)
    )
    if since is not None:
        query = query.where(FlagRow.updated_at >= since)
    if after:
        at, flag_id = decode_cursor(after)
        query = query.where(or_(FlagRow.updated_at > at, and_(FlagRow.updated_at == at, FlagRow.flag_id > flag_id)))
    if jurisdiction is not None:
        query = query.where(jurisdiction.condition(FlagRow.ancestor_columns()))
    rows = (await session.execute(query)).all()
    items = [_view(flag, item) for flag, item in rows[:first]]
    return FlagPage(items, items[-1].cursor if items else None, len(rows) > first)


def _view(flag: FlagRow, item: OutboxItem | None) -> FlagView:
    frozen = item is not None and item.first_attempt_at is not None
    return FlagView(
        flag_id=flag.flag_id,
        uscc=flag.uscc,
        reason=flag.reason,
        severity=flag.severity,
        complaint_ids=list(flag.complaint_ids),
        window_start=flag.window_start,
        window_end=flag.window_end,
        issued_by=flag.issued_by,
        issued_at=flag.issued_at,
        updated_at=flag.updated_at,
        escalated_at=flag.escalated_at,
        delivery_state=item.state if item else PENDING,
        delivery_attempts=item.attempts if item else 0,
        delivered_at=item.delivered_at if item else None,
        delivered_severity=item.payload.get("severity") if item and frozen else None,
        last_error=item.last_error if item else None,
        cursor=encode_cursor(flag.updated_at, flag.flag_id),
    )
