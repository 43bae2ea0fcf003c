"""Tables of complaint flags, the delivery outbox and early-warning alerts, and the flags' pull API.

`complaint_flags` holds the current finding (its severity may rise, its complaint ids grow); `outbox` holds
what is to be delivered to an external system, with the payload frozen at the first delivery attempt so
that every retry sends the same body under the same Idempotency-Key. `list_flags` joins the two for
`creditFlags`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, Float, Index, Integer, PrimaryKeyConstraint, String, Text, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from gateway.core.cursor import decode_cursor, encode_cursor
from gateway.core.db import UTCDateTime
from gateway.core.models import Base
from gateway.units.jurisdiction import Jurisdiction
from gateway.units.models import OrgUnit

# Outbox states. FAILED: the system refused the request itself (4xx other than auth); an operator must look.
PENDING, DELIVERED, FAILED = "PENDING", "DELIVERED", "FAILED"
CREDIT, EMERGENCY = "credit", "emergency"


class FlagRow(Base):
    __tablename__ = "complaint_flags"

    flag_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32))
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    severity: Mapped[str] = mapped_column(String(8))  # the finding now; only ever rises
    complaint_ids: Mapped[list[str]] = mapped_column(JSON)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    issued_by: Mapped[str] = mapped_column(String(12))
    # issued_by's ancestors by level (itself included), for jurisdiction filters without a recursive query
    i1: Mapped[str | None] = mapped_column(String(12))
    i2: Mapped[str | None] = mapped_column(String(12))
    i3: Mapped[str | None] = mapped_column(String(12))
    i4: Mapped[str | None] = mapped_column(String(12))
    i5: Mapped[str | None] = mapped_column(String(12))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @classmethod
    def ancestor_columns(cls) -> tuple[Any, ...]:
        """`i1`..`i5`: the issuing unit's ancestors, for `Jurisdiction.condition`."""
        return (cls.i1, cls.i2, cls.i3, cls.i4, cls.i5)

    __table_args__ = (Index("ix_complaint_flags_updated", "updated_at", "flag_id"),)


class OutboxItem(Base):
    __tablename__ = "outbox"

    system: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(128))  # the Idempotency-Key: flag_id, or the record id of an incident
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(12))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # set: payload is frozen
    last_error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    receipt: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (
        PrimaryKeyConstraint("system", "key"),
        Index("ix_outbox_due", "state", "next_attempt_at"),
    )


class AlertRow(Base):
    """An early-warning alert (动态预警): one county's count of one category on one day, far above normal."""

    __tablename__ = "early_warnings"

    alert_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    unit_code: Mapped[str] = mapped_column(String(12))  # the county (level 4)
    a1: Mapped[str | None] = mapped_column(String(12))
    a2: Mapped[str | None] = mapped_column(String(12))
    a3: Mapped[str | None] = mapped_column(String(12))
    category: Mapped[str] = mapped_column(String(24))
    day: Mapped[date] = mapped_column(Date)
    count: Mapped[int] = mapped_column(Integer)  # the day's count when last evaluated; only ever rises
    baseline: Mapped[float] = mapped_column(Float)  # expected daily count from the trailing 28 days
    threshold: Mapped[int] = mapped_column(Integer)  # the smallest count that alerts on that baseline
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @classmethod
    def ancestor_columns(cls) -> tuple[Any, ...]:
        """The county's ancestors by level, itself at level 4; no station (level 5) holds a county."""
        return (cls.a1, cls.a2, cls.a3, cls.unit_code, None)

    __table_args__ = (Index("ix_early_warnings_day", "day"), Index("ix_early_warnings_unit_day", "unit_code", "day"))


# ------------------------------------------------------------------------------------------- unit moves

MOVED_PER_STATEMENT = 500  # unit codes per IN (...) list, under SQLite's bound-parameter limit


async def rehome_flags_and_alerts(session: AsyncSession, moved: Collection[str]) -> None:
    """After units moved in the tree: the issuing unit's ancestors of every flag issued by one of the
    `moved` unit codes (`i1`..`i5`), and the county's ancestors of every alert of one (`a1`..`a3`), read
    again from `org_units`, in the caller's transaction. The flag itself (its id, `issued_by`, what was
    sent) stays: only who may see it follows the tree."""
    codes = sorted(set(moved))
    for start in range(0, len(codes), MOVED_PER_STATEMENT):
        chunk = codes[start:start + MOVED_PER_STATEMENT]
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
