"""What the external systems answer and accept (external-systems.md), as typed models.

Answers are validated on arrival: a 2xx body that does not fit is a broken upstream (UpstreamError), never a
half-read object. Unknown extra fields are ignored so that a system can add fields without breaking us.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

# NaN and Infinity are not JSON (Python's parser takes them): an answer carrying them breaks the contract.
_ANSWER = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)


def _valid_text(value: Any) -> Any:
    """Strings of an answer must be valid Unicode: JSON's "\\ud800" escape decodes to a lone surrogate, which
    no later answer of the gateway could encode."""
    for text in value if isinstance(value, list) else [value]:
        if isinstance(text, str):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("not valid Unicode (an unpaired surrogate)") from None
    return value


class _Answer(BaseModel):
    """What a system answers: unknown fields ignored, numbers finite, text valid Unicode."""

    model_config = _ANSWER
    _text = field_validator("*")(_valid_text)

CaseStatus = Literal["REGISTERED", "INVESTIGATING", "PENALIZED", "CLOSED", "NOT_FILED"]
RegistrationStatus = Literal["ACTIVE", "REVOKED", "CANCELLED"]
RiskLevel = Literal["A", "B", "C", "D"]
FlagReason = Literal["COMPLAINT_SURGE", "CASE_FILED_FROM_REPORT", "CRITICAL_SAFETY"]
Severity = Literal["LOW", "MEDIUM", "HIGH"]
IncidentStatus = Literal["REPORTED", "DISPATCHED", "ON_SCENE", "RESOLVED"]


# ---------------------------------------------------------------------------------------------- complaints


class ChangesPage(BaseModel):
    """A page of the complaint platform's changes feed. Items stay raw dicts: the gateway validates records
    itself (records.md) so that one bad record is rejected alone instead of failing the whole page."""

    model_config = _ANSWER
    items: list[Any]  # raw JSON values, whatever they are: a non-object is one more record to reject
    next_cursor: str
    has_more: bool

    _cursor = field_validator("next_cursor")(_valid_text)


# ---------------------------------------------------------------------------------------------- enforcement


class Case(_Answer):
    case_no: str
    lead_id: str | None = None
    complaint_ids: list[str]
    respondent_uscc: str | None = None
    unit_code: str
    status: CaseStatus
    violation: str | None = None
    penalty_amount: Decimal | None = None
    filed_at: AwareDatetime
    closed_at: AwareDatetime | None = None


class CaseLeadRequest(BaseModel):
    complaint_id: str
    respondent_uscc: str | None
    unit_code: str
    summary: str
    suggested_at: datetime


class CaseLeadResult(_Answer):
    lead_id: str
    status: Literal["PENDING_REVIEW"]


# ---------------------------------------------------------------------------------------------- credit


class Enterprise(_Answer):
    uscc: str
    name: str
    legal_representative: str | None = None
    registration_status: RegistrationStatus
    registration_authority: str
    abnormal_operation: bool
    serious_violation: bool
    risk_level: RiskLevel
    updated_at: AwareDatetime


class ComplaintFlag(_Answer):  # also what the gateway sends: the same checks hold both ways
    flag_id: str
    uscc: str
    reason: FlagReason
    severity: Severity
    complaint_ids: list[str]
    window_start: AwareDatetime
    window_end: AwareDatetime
    issued_by: str
    issued_at: AwareDatetime


class FlagReceipt(_Answer):
    flag_id: str
    received_at: AwareDatetime


# ---------------------------------------------------------------------------------------------- emergency


class IncidentRequest(BaseModel):
    source: Literal["12315"] = "12315"
    complaint_ids: list[str] = Field(min_length=1)
    category: str
    urgency: str
    unit_code: str
    summary: str
    reported_at: datetime


class IncidentResult(_Answer):
    incident_id: str
    status: Literal["REPORTED"]


class Incident(_Answer):
    incident_id: str
    complaint_ids: list[str]
    status: IncidentStatus
    commanding_unit: str | None = None
    updated_at: AwareDatetime
