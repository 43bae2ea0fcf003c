"""The declarative base every domain's tables join, the store's small named values (`SyncState`), and the
live feed's relay of alerts (`FeedAlertRow`, written and read by `gateway.core.feed`).

Each domain keeps its tables in its own `models.py`; Alembic sees them all through `gateway.migrations.env`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gateway.core.db import UTCDateTime

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
AUTO_ID = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class SyncState(Base):
    """Small named values that must survive restarts, such as the complaint platform's feed cursor."""

    __tablename__ = "sync_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FeedAlertRow(Base):
    """One alert of the live feed on its way to subscribers (`gateway.core.feed`)."""

    __tablename__ = "feed_alerts"

    id: Mapped[int] = mapped_column(AUTO_ID, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    unit_code: Mapped[str] = mapped_column(String(12))  # whose subtree hears it
    complaint_ids: Mapped[list[str]] = mapped_column(JSON)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (Index("ix_feed_alerts_at", "at"),)
