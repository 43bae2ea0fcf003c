"""Tables of complaint flags, the delivery outbox and early-warning alerts, and the flags' pull API.

`complaint_flags` holds the current finding (its severity may rise, its complaint ids grow); `outbox` holds
what is to be delivered to an external system, with the payload frozen at the first delivery attempt so
that every retry sends the same body under the same Idempotency-Key. `list_flags` joins the two for
`creditFlags`.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, Float, Index, Integer, PrimaryKeyConstraint, String, Text, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from gateway.core import jsontext
from gateway.core.db import UTCDateTime
from gateway.core.models import Base

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

    __table_args__ = (Index("ix_early_warnings_day", "day"), Index("ix_early_warnings_unit_day", "unit_code", "day"))


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


def encode_cursor(updated_at: datetime, flag_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([updated_at.isoformat(), flag_id]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """ValueError on anything that is not a cursor this module made."""
    try:
        at, flag_id = jsontext.loads(base64.urlsafe_b64decode(cursor.encode()))  # no U+0000 into SQL
        when = datetime.fromisoformat(at)
    except Exception:
        raise ValueError("invalid cursor") from None
    if when.tzinfo is None or not isinstance(flag_id, str):
        raise ValueError("invalid cursor")
    return when, flag_id


def scope_level_column(unit_code: str, level: int) -> Any:
    return getattr(FlagRow, f"i{level}") == unit_code


async def list_flags(
    session: AsyncSession,
    since: datetime | None = None,
    first: int = 50,
    after: str | None = None,
    unit_scope: tuple[str, int] | None = None,
) -> FlagPage:
    """Flags raised or escalated at or after `since`, oldest change first, with their delivery state.

    `unit_scope` is the caller's (unit code, level): only flags issued by that unit or below it are listed;
    None lists all. A flag escalated later reappears at its new place in the order, like a changes feed.
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
    if unit_scope is not None:
        query = query.where(scope_level_column(*unit_scope))
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
