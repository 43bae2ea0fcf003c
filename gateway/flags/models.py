"""Tables of incidents the gateway raised in the emergency-command system: which complaints each one
came from (`incident_links`), and escalations by their Idempotency-Key (`incident_escalations`).

The emergency system looks incidents up by incident id only, so the gateway remembers which incidents it
raised for which complaints; `Complaint.incidents` reads them back in one batch.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.core.db import UTCDateTime
from gateway.core.models import Base


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
