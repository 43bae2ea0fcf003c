"""What the REST routes tell OpenAPI (`/openapi.json`, `/docs`, `/redoc`): parameters, bodies, response types,
the bearer scheme and the push signature. The handlers read requests themselves (the push must be verified on
its raw bytes; errors keep the gateway's own shapes), so the contract is declared here, beside them.
"""

from __future__ import annotations

from typing import Any

from fastapi.security import HTTPBearer
from pydantic import BaseModel, Field

bearer = HTTPBearer(
    auto_error=False,  # the routes answer a missing token in their own shape (401 UNAUTHENTICATED)
    scheme_name="bearer",
    bearerFormat="JWT",
    description="HS256 JWT signed with GATEWAY_JWT_SECRET; claims sub, unit, roles, exp (`gateway token`).",
)


class ErrorExtensions(BaseModel):
    code: str = Field(description="UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, BAD_USER_INPUT, INTERNAL")


class ErrorItem(BaseModel):
    message: str
    extensions: ErrorExtensions


class Errors(BaseModel):
    """The error shape of the REST routes (the one GraphQL callers already parse)."""

    errors: list[ErrorItem]


class UnitRef(BaseModel):
    code: str
    name: str
    level: int = Field(ge=1, le=5)


class ObligationRate(BaseModel):
    on_time: int
    late: int
    overdue: int
    rate: float | None


class KpiRow(BaseModel):
    """One unit's metrics (kpi.md); rates are fractions in [0, 1], unrounded; money a decimal string."""

    unit: UnitRef
    received: int
    received_by_kind: dict[str, int]
    received_by_channel: dict[str, int]
    received_by_hotline: dict[str, int]
    on_time: int
    late: int
    overdue: int
    timeliness_rate: float | None
    timeliness_by_obligation: dict[str, ObligationRate]
    reply_rate: float | None
    callback_rate: float | None
    satisfaction_rate: float | None
    mediation_success_rate: float | None
    case_filing_rate: float | None
    recovered_amount: str = Field(examples=["123456.78"])
    score: float | None
    rank: int | None


class KpiReport(BaseModel):
    """The KPI report document (interfaces.md), the same as `gateway report --format json`."""

    unit: UnitRef
    level: int
    from_: str = Field(alias="from", examples=["2024-01-01"])
    to: str = Field(examples=["2024-03-31"])
    as_of: str = Field(examples=["2024-06-30T23:59:59+08:00"])
    scheme: str
    calendar_complete: bool
    policy_versions: list[str]
    total: KpiRow
    rows: list[KpiRow]


def _query(name: str, description: str, required: bool = False, **schema: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": {"type": "string", **schema}}


REPORT: dict[str, Any] = {
    "summary": "A KPI report as JSON, CSV or Excel",
    "description": "Needs the `evaluator` role; the unit must be the caller's own or below it (else 403). "
                   "CSV is UTF-8 with a byte-order mark; text that could run as a formula is made literal.",
    "responses": {
        200: {"description": "the report", "model": KpiReport, "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                "schema": {"type": "string", "format": "binary"}},
        }},
        400: {"description": "bad input (BAD_USER_INPUT)", "model": Errors},
        401: {"description": "no or bad token (UNAUTHENTICATED)", "model": Errors},
        403: {"description": "not an evaluator, or a unit outside the caller's (FORBIDDEN)", "model": Errors},
    },
    "openapi_extra": {"parameters": [
        _query("unit", "code of the unit evaluated", required=True, examples=["510000"]),
        _query("level", "level of the rows, below the unit's (default: the unit's level + 1)", pattern="^[2-5]$"),
        _query("from", "first day received (Asia/Shanghai), YYYY-MM-DD", required=True, format="date"),
        _query("to", "last day received (Asia/Shanghai), YYYY-MM-DD", required=True, format="date"),
        _query("as_of", "evaluation instant, RFC 3339 with offset (default: now)", format="date-time"),
        _query("scheme", "scoring scheme (default: default)"),
        _query("format", "json (default), csv or xlsx", enum=["json", "csv", "xlsx"]),
    ]},
}


class PushResult(BaseModel):
    stored: int
    rejected: list[dict[str, Any]] = Field(description='[{"index", "id", "reason"}]: items refused, by position')


class PushError(BaseModel):
    error: dict[str, str] = Field(description='{"code", "message"}')


INGEST: dict[str, Any] = {
    "summary": "The complaint platform's push of changed records",
    "description": "Signed, not authenticated by a token. Off (404) while GATEWAY_INGEST_SECRET is unset. "
                   "Each item is validated alone: bad ones are listed in `rejected`, the others stored.",
    "responses": {
        200: {"model": PushResult, "description": "stored and rejected items"},
        400: {"model": PushError, "description": "not JSON, or not {\"items\": [...]}"},
        401: {"model": PushError, "description": "missing, wrong or stale X-Signature"},
        404: {"model": PushError, "description": "push ingest is off"},
        413: {"model": PushError, "description": "body or item count over the limit"},
    },
    "openapi_extra": {
        "parameters": [{
            "name": "X-Signature", "in": "header", "required": True,
            "description": "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<raw body>\" with GATEWAY_INGEST_SECRET>; "
                           "t must be within GATEWAY_INGEST_TOLERANCE_S of the gateway's clock",
            "schema": {"type": "string", "examples": ["t=1718000000,v1=3f2a…"]},
        }],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["items"],
            "properties": {"items": {
                "type": "array", "maxItems": 1000,
                "description": "complaint records (records.md), each with its events",
                "items": {"type": "object", "required": ["id", "kind", "received_at", "handling_unit"],
                          "additionalProperties": True},
            }},
        }}}},
    },
}
