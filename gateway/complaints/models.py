"""The complaint record's tables: records, their events, the complainant's personal data (kept apart), the
audit log of clear reads of it, and the case leads suggested for a record.

Enumerations are kept as short strings: `gateway.complaints.records` is the one place that validates them.
Every complaint carries the codes of its handling unit's ancestors (`u1`..`u5`, one per level), so that
jurisdiction filters and KPI roll-ups are a plain indexed equality or GROUP BY, with no recursive query.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.core.db import UTCDateTime
from gateway.core.models import AUTO_ID, Base


class Complaint(Base):
    __tablename__ = "complaints"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(24))
    hotline: Mapped[str | None] = mapped_column(String(5))
    urgency: Mapped[str] = mapped_column(String(8))
    category: Mapped[str] = mapped_column(String(24))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_day: Mapped[date] = mapped_column(Date)  # received_at's date in Asia/Shanghai
    handling_unit: Mapped[str] = mapped_column(String(12))  # a unit of org_units (checked by the validator)
    u1: Mapped[str | None] = mapped_column(String(12))
    u2: Mapped[str | None] = mapped_column(String(12))
    u3: Mapped[str | None] = mapped_column(String(12))
    u4: Mapped[str | None] = mapped_column(String(12))
    u5: Mapped[str | None] = mapped_column(String(12))
    region_code: Mapped[str | None] = mapped_column(String(6))
    respondent_uscc: Mapped[str | None] = mapped_column(String(18))
    respondent_name: Mapped[str | None] = mapped_column(String(500))
    real_name: Mapped[bool] = mapped_column(Boolean)  # complainant.real_name: not personal data itself
    summary: Mapped[str] = mapped_column(Text)
    amount_involved_cents: Mapped[int | None] = mapped_column(BigInteger)
    recovered_amount_cents: Mapped[int | None] = mapped_column(BigInteger)
    content_hash: Mapped[str] = mapped_column(String(64))  # of the validated record: skips no-op updates
    # The record's own `updated_at` (records.md 1.1: its version); a copy older than this never replaces
    # the fields (gateway.ingest.store.replaces). `updated_at` below is when the gateway last wrote the row.
    record_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @classmethod
    def ancestor_columns(cls) -> tuple[Any, ...]:
        """`u1`..`u5`, for `gateway.units.jurisdiction.Jurisdiction.condition`."""
        return (cls.u1, cls.u2, cls.u3, cls.u4, cls.u5)

    __table_args__ = (
        Index("ix_complaints_received", "received_at"),
        Index("ix_complaints_u2_day", "u2", "received_day"),
        Index("ix_complaints_u3_day", "u3", "received_day"),
        Index("ix_complaints_u4_day", "u4", "received_day"),
        Index("ix_complaints_unit", "handling_unit"),
        Index("ix_complaints_uscc_day", "respondent_uscc", "received_day"),  # surge counts per (USCC, month)
    )


def record_ancestors(row: Any) -> tuple[str | None, ...]:
    """A record row's handling-unit ancestors (`u1`..`u5`), for `Jurisdiction.contains`."""
    return (row.u1, row.u2, row.u3, row.u4, row.u5)


class Complainant(Base):
    """Personal data (个人信息), kept apart from the record so that every read of it is deliberate."""

    __tablename__ = "complainants"

    complaint_id: Mapped[str] = mapped_column(
        String(64), primary_key=True  # of complaints: written with it by gateway.ingest.store only
    )
    name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40))


class Event(Base):
    __tablename__ = "events"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    complaint_id: Mapped[str] = mapped_column(String(64))  # of complaints: written with it by the store only
    seq: Mapped[int] = mapped_column(Integer)  # position in the record's history: by `at`, ties as given
    type: Mapped[str] = mapped_column(String(24))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    unit: Mapped[str | None] = mapped_column(String(12))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (Index("ix_events_complaint_seq", "complaint_id", "seq"),)


class PiiRead(Base):
    """One clear read of a complainant's personal data: who, when, which record, which fields."""

    __tablename__ = "pii_audit_log"

    id: Mapped[int] = mapped_column(AUTO_ID, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(200))  # the token's `sub`
    actor_unit: Mapped[str] = mapped_column(String(12))
    complaint_id: Mapped[str] = mapped_column(String(64))
    fields: Mapped[str] = mapped_column(String(100))  # comma-separated, e.g. "name,phone"
    request_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_pii_audit_log_at", "at"),
        Index("ix_pii_audit_log_complaint", "complaint_id"),
        Index("ix_pii_audit_log_actor", "actor"),
    )


class CaseLeadRow(Base):
    """A case lead suggested for a complaint: the body is fixed at the first suggestion, so that asking again
    sends the very same request under the same Idempotency-Key and gets the first lead back."""

    __tablename__ = "case_leads"

    complaint_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    lead_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
