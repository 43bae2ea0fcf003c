"""`GET /api/v1/kpi/report`: the KPI report as a download for evaluators' tools (interfaces.md).

Bearer JWT with the `evaluator` role; the report's unit must be the caller's unit or below it. Errors are
answered as `{"errors": [{"message", "extensions": {"code"}}]}`, the shape GraphQL callers already parse.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from gateway.api import openapi
from gateway.api.auth import SignIn, bearer_sign_in
from gateway.core.auth import AuthError
from gateway.core.observability import REPORT_DURATION
from gateway.reports.arguments import report_arguments
from gateway.reports.build import KpiConfigError, ReportError, build_report, load_config
from gateway.supervision.report import count_orders
from gateway.units.jurisdiction import caller_sees_unit
from kpi.exports import export_filename, to_csv, to_xlsx

router = APIRouter()

FORMATS = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_STATUS = {"UNAUTHENTICATED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404, "BAD_USER_INPUT": 400, "INTERNAL": 500}


def error(code: str, message: str) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]},
                        status_code=_STATUS[code])


@router.get("/api/v1/kpi/report", response_model=None, dependencies=[Depends(openapi.bearer)], **openapi.REPORT)
async def kpi_report(request: Request, caller: SignIn = Depends(bearer_sign_in)) -> Response:
    if isinstance(caller, AuthError):
        return error("UNAUTHENTICATED", str(caller))
    if not caller.has("evaluator"):
        return error("FORBIDDEN", "KPI reports need the evaluator role")
    query = request.query_params
    unit = query.get("unit")
    fmt = query.get("format") or "json"
    if not unit:
        return error("BAD_USER_INPUT", "unit is required")
    if fmt not in FORMATS:
        return error("BAD_USER_INPUT", f"format must be one of {', '.join(FORMATS)}")
    started = time.perf_counter()
    try:
        params = report_arguments(query)
        config = load_config()
        async with request.app.state.sessionmaker() as session:
            if not await caller_sees_unit(session, caller.unit, unit):
                # an unknown unit gets the same answer as a foreign one: codes are not revealed
                return error("FORBIDDEN", f"unit {unit} is not your unit {caller.unit} nor below it")
            doc = await build_report(session, unit=unit, config=config, orders=count_orders, **params)
    except ReportError as exc:
        return error(exc.code, str(exc))
    except KpiConfigError as exc:
        return error("INTERNAL", f"KPI configuration: {exc}")
    if fmt == "json":
        REPORT_DURATION.labels(fmt).observe(time.perf_counter() - started)
        return JSONResponse(doc)
    name = export_filename(doc, fmt)
    body = to_csv(doc) if fmt == "csv" else to_xlsx(doc, config.policies.scheme(doc["scheme"]).weights)
    REPORT_DURATION.labels(fmt).observe(time.perf_counter() - started)
    return Response(body, media_type=FORMATS[fmt], headers={"Content-Disposition": f'attachment; filename="{name}"'})
