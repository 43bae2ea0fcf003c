"""GraphQL enums: those of records.md reused from `gateway.complaints.records`, the rest from external-systems.md."""

from __future__ import annotations

import graphene

from gateway.complaints import records
from gateway.complaints.status import ComplaintStatusValue

Kind = graphene.Enum.from_enum(records.Kind, description="What a record is (records.md).")
Channel = graphene.Enum.from_enum(records.Channel, description="How a record reached the platform.")
Urgency = graphene.Enum.from_enum(records.Urgency, description="一般, 紧急, 特别紧急.")
Category = graphene.Enum.from_enum(records.Category, description="What a record is about.")
EventType = graphene.Enum.from_enum(records.EventType, description="A lifecycle event (records.md).")


ComplaintStatus = graphene.Enum.from_enum(
    ComplaintStatusValue, name="ComplaintStatus", description="Where a record stands, from its events."
)


class ObligationCode(graphene.Enum):
    C_ACCEPT = "C_ACCEPT"
    C_CONCLUDE = "C_CONCLUDE"
    R_DECIDE = "R_DECIDE"
    R_REPLY = "R_REPLY"


class ObligationState(graphene.Enum):
    ON_TIME = "ON_TIME"
    LATE = "LATE"
    OVERDUE = "OVERDUE"
    PENDING = "PENDING"


class CaseStatus(graphene.Enum):
    REGISTERED = "REGISTERED"
    INVESTIGATING = "INVESTIGATING"
    PENALIZED = "PENALIZED"
    CLOSED = "CLOSED"
    NOT_FILED = "NOT_FILED"


class RegistrationStatus(graphene.Enum):
    ACTIVE = "ACTIVE"
    REVOKED = "REVOKED"
    CANCELLED = "CANCELLED"


class RiskLevel(graphene.Enum):
    A = "A"
    B = "B"
    C = "C"
    D = "D"


class IncidentStatus(graphene.Enum):
    REPORTED = "REPORTED"
    DISPATCHED = "DISPATCHED"
    ON_SCENE = "ON_SCENE"
    RESOLVED = "RESOLVED"


class FlagReason(graphene.Enum):
    COMPLAINT_SURGE = "COMPLAINT_SURGE"
    CASE_FILED_FROM_REPORT = "CASE_FILED_FROM_REPORT"
    CRITICAL_SAFETY = "CRITICAL_SAFETY"


class Severity(graphene.Enum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"


class DeliveryState(graphene.Enum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"
