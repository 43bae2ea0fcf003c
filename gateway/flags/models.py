"""The tables of flags, alerts, the outbox and incidents.

- `complaint_flags` (`FlagRow`) holds the current finding (its severity may rise, its complaint ids grow),
  with its issuing unit's ancestors for jurisdiction;
- `outbox` (`OutboxItem`) holds what is to be delivered to an external system, with the payload frozen at
  the first delivery attempt so that every retry sends the same body under the same Idempotency-Key;
- `surge_counts` (`SurgeCount`): per enterprise and month, the records that count towards a surge, so that a
  bulk load counts only the few enterprises near a surge from the records themselves;
- `early_warnings` (`AlertRow`): early-warning alerts (动态预警), one per county, category and day;
- `incident_links`: which complaints each incident the gateway raised came from (the emergency system looks
  incidents up by incident id only; `Complaint.incidents` reads them back in one batch), and
  `incident_escalations` (`EscalationRow`): escalations by their Idempotency-Key.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, Float, Index, Integer, PrimaryKeyConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.core.db import UTCDateTime
from gateway.core.models import Base

# Outbox states. FAILED (a dead letter): the system refused the request itself for good (a 4xx other than 401,
# 403, 408 and 429); it stays until an operator requeues it (`gateway dispatch --requeue`).
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


class SurgeCount(Base):
    """Records (COMPLAINT, REPORT) of one enterprise in one Asia/Shanghai month (`YYYY-MM`). Never fewer than
    the records stored: inserts add to it, and it is exact again wherever the rule counts the records
    themselves (gateway.flags.rules._surges), which it does before any finding."""

    __tablename__ = "surge_counts"

    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    records: Mapped[int] = mapped_column(Integer)


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
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # set with state FAILED, cleared by a requeue
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


class IncidentLink(Base):
    __tablename__ = "incident_links"

    complaint_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    incident_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_incident_links_incident", "incident_id"),)


class EscalationRow(Base):
    """An incident escalation by its Idempotency-Key: the body is fixed at the first attempt, so that the same
    escalation sent again (a client's retry) is the very same request and opens no second incident."""

    __tablename__ = "incident_escalations"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    incident_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
