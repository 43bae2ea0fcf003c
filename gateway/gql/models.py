"""Tables the GraphQL layer owns: the personal-data audit log, complaint-to-incident links, case leads.

The emergency system looks incidents up by incident id only, so the gateway remembers which incidents it
raised for which complaints (`incident_links`); `Complaint.incidents` reads them back in one batch.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import UTCDateTime
from gateway.models import Base

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
_ID = BigInteger().with_variant(Integer(), "sqlite")


class PiiRead(Base):
    """One clear read of a complainant's personal data: who, when, which record, which fields."""

    __tablename__ = "pii_audit_log"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
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


class IncidentLink(Base):
    __tablename__ = "incident_links"

    complaint_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    incident_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_incident_links_incident", "incident_id"),)


class CaseLeadRow(Base):
    """A case lead suggested for a complaint: the body is fixed at the first suggestion, so that asking again
    sends the very same request under the same Idempotency-Key and gets the first lead back."""

    __tablename__ = "case_leads"

    complaint_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    lead_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EscalationRow(Base):
    """An incident escalation by its Idempotency-Key: the body is fixed at the first attempt, so that the same
    escalation sent again (a client's retry) is the very same request and opens no second incident."""

    __tablename__ = "incident_escalations"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    incident_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
