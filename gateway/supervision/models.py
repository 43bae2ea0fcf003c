"""Supervision orders (督办单): the order, the records it is about, and every response to it.

An order's state at an instant is a comparison of stored values (issued_at, due_day and the first
response's instant and timeliness), so lists and the KPI report's `supervision` block are aggregate SQL.
`first_response_at` / `first_response_on_time` copy the first response (the one that decides timeliness)
onto the order for that reason; every response is kept in `supervision_responses`.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gateway.core.db import UTCDateTime
from gateway.core.models import AUTO_ID, Base


class SupervisionOrder(Base):
    __tablename__ = "supervision_orders"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    issued_by: Mapped[str] = mapped_column(String(12), ForeignKey("org_units.code"))  # the issuing unit
    issued_by_sub: Mapped[str] = mapped_column(String(200))  # the caller's name (token `sub`)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str] = mapped_column(Text)
    respond_within: Mapped[int] = mapped_column(SmallInteger)  # working days
    due_day: Mapped[date] = mapped_column(Date)  # the respond_within-th working day after issued_at's date
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_response_on_time: Mapped[bool | None] = mapped_column(Boolean)

    __table_args__ = (
        # the same key from the same caller unit is the same order
        UniqueConstraint("issued_by", "idempotency_key", name="uq_supervision_orders_key"),
        Index("ix_supervision_orders_issuer_at", "issued_by", "issued_at"),
        Index("ix_supervision_orders_issued_at", "issued_at"),
    )


class SupervisionOrderRecord(Base):
    """One record an order is about; an order has 1–100."""

    __tablename__ = "supervision_order_records"

    order_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("supervision_orders.id", ondelete="CASCADE"), primary_key=True
    )
    complaint_id: Mapped[str] = mapped_column(String(64), ForeignKey("complaints.id"), primary_key=True)

    __table_args__ = (Index("ix_supervision_order_records_complaint", "complaint_id"),)


class SupervisionResponse(Base):
    """A subordinate's answer to an order. Every response is kept; the first decides timeliness."""

    __tablename__ = "supervision_responses"

    id: Mapped[int] = mapped_column(AUTO_ID, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(36), ForeignKey("supervision_orders.id", ondelete="CASCADE"))
    unit: Mapped[str] = mapped_column(String(12), ForeignKey("org_units.code"))
    sub: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_supervision_responses_order", "order_id", "at"),)
