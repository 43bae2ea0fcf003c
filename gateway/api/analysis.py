"""`GET /api/v1/analysis/trends` and `GET /api/v1/analysis/series` (supervision.md): the analysis fields as
downloads, with the GraphQL arguments in snake_case and `format=json|csv|xlsx`.

`filter` is the `complaints` filter as a JSON object (`gateway.complaints.filters.filter_from_json`). Bearer
JWT with the `supervisor` or `evaluator` role; the unit must be the caller's unit or below it. Errors are
answered like the KPI report's: `{"errors": [{"message", "extensions": {"code"}}]}`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.api.auth import SignIn, bearer_sign_in
from gateway.api.reports import FORMATS, error
from gateway.complaints.filters import FilterError, filter_from_json
from gateway.core.auth import AuthError
from gateway.core.time import required_date
from gateway.supervision import analysis, exports
from gateway.supervision.analysis import AnalysisError
from gateway.units.jurisdiction import caller_sees_unit

router = APIRouter()

ANALYSTS = ("supervisor", "evaluator")


def _choice(query: Any, name: str, choices: tuple[str, ...], default: str | None = None) -> str:
    value = query.get(name) or default
    if value not in choices:
        raise AnalysisError(f"{name} must be one of {', '.join(choices)}")
    return str(value)


def _top(query: Any) -> int:
    text = query.get("top")
    if text is None or text == "":
        return 20
    if not text.strip().lstrip("-").isdigit():
        raise AnalysisError(f"top: {text!r} is not a whole number")
    return int(text)


@dataclass(frozen=True, slots=True)
class Download:
    """What a route computed: the JSON document, the file name's stem, and its CSV and XLSX renderings."""

    doc: dict[str, Any]
    stem: str
    to_csv: Callable[[dict[str, Any]], bytes]
    to_xlsx: Callable[[dict[str, Any]], bytes]


Run = Callable[[AsyncSession, Any, list[ColumnElement[bool]]], Awaitable[Download]]


async def _answer(request: Request, caller: SignIn, run: Run) -> Response:
    """Check role, jurisdiction and filter, then `run` and answer in the asked format."""
    if isinstance(caller, AuthError):
        return error("UNAUTHENTICATED", str(caller))
    if not any(caller.has(role) for role in ANALYSTS):
        return error("FORBIDDEN", "analysis needs the role 'supervisor' or 'evaluator'")
    query = request.query_params
    unit, fmt = query.get("unit"), query.get("format") or "json"
    if not unit:
        return error("BAD_USER_INPUT", "unit is required")
    if fmt not in FORMATS:
        return error("BAD_USER_INPUT", f"format must be one of {', '.join(FORMATS)}")
    try:
        flt = filter_from_json(query.get("filter"))
        async with request.app.state.sessionmaker() as session:
            if not await caller_sees_unit(session, caller.unit, unit):
                # an unknown unit gets the same answer as a foreign one: codes are not revealed
                return error("FORBIDDEN", f"unit {unit} is not your unit {caller.unit} nor below it")
            out = await run(session, query, await analysis.filtered(session, flt))
    except FilterError as exc:
        return error("BAD_USER_INPUT", str(exc))
    except AnalysisError as exc:
        return error(exc.code, str(exc))
    if fmt == "json":
        return JSONResponse(out.doc)
    body = out.to_csv(out.doc) if fmt == "csv" else out.to_xlsx(out.doc)
    return Response(body, media_type=FORMATS[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{out.stem}.{fmt}"'})


@router.get("/api/v1/analysis/trends", response_model=None)
async def trends(request: Request, caller: SignIn = Depends(bearer_sign_in)) -> Response:
    async def run(session: AsyncSession, query: Any, conditions: list[ColumnElement[bool]]) -> Download:
        date_from, date_to = required_date(query, "from", AnalysisError), required_date(query, "to", AnalysisError)
        report = await analysis.trends(
            session, query["unit"], date_from, date_to, _choice(query, "by", analysis.DIMENSIONS),
            _choice(query, "compare_with", analysis.COMPARISONS, "PREVIOUS_PERIOD"), conditions, _top(query),
        )
        stem = f"trends-{report.unit.code}-{report.by}-{date_from}-{date_to}"
        return Download(exports.trend_document(report), stem, exports.trends_csv, exports.trends_xlsx)

    return await _answer(request, caller, run)


@router.get("/api/v1/analysis/series", response_model=None)
async def series(request: Request, caller: SignIn = Depends(bearer_sign_in)) -> Response:
    async def run(session: AsyncSession, query: Any, conditions: list[ColumnElement[bool]]) -> Download:
        date_from, date_to = required_date(query, "from", AnalysisError), required_date(query, "to", AnalysisError)
        interval = _choice(query, "interval", analysis.INTERVALS)
        points = await analysis.series(session, query["unit"], date_from, date_to, interval, conditions)
        unit = await analysis.report_unit(session, query["unit"])
        return Download(exports.series_document(unit, date_from, date_to, interval, points),
                        f"series-{unit.code}-{interval}-{date_from}-{date_to}", exports.series_csv,
                        exports.series_xlsx)

    return await _answer(request, caller, run)
