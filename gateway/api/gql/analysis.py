"""`trends` and `series` (分析研判, supervision.md), thin over `gateway.supervision.analysis`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import graphene
from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.api.gql import errors
from gateway.api.gql.context import RequestContext, context_of
from gateway.api.gql.kpi_report import ReportUnit
from gateway.api.gql.listing import ComplaintFilter
from gateway.complaints.filters import FilterError
from gateway.supervision import analysis
from gateway.supervision.analysis import AnalysisError

ANALYSTS = ("supervisor", "evaluator")

TrendDimension = graphene.Enum(
    "TrendDimension", [(d, d) for d in analysis.DIMENSIONS],
    description="What `trends` counts by. SUBORDINATE_UNIT: the unit one level below (records handled by the "
                "unit itself under its own code); ENTERPRISE: respondent USCC; REGION: region_code.",
)
TrendComparison = graphene.Enum(
    "TrendComparison", [(c, c) for c in analysis.COMPARISONS],
    description="PREVIOUS_PERIOD (环比): as many days, ending the day before `from`. SAME_PERIOD_LAST_YEAR (同比): "
                "one year earlier, 29 February as 28 February.",
)
Interval = graphene.Enum("Interval", [(i, i) for i in analysis.INTERVALS],
                         description="DAY, ISO WEEK (starting Monday) or calendar MONTH.")


class TrendRow(graphene.ObjectType):
    key = graphene.String(required=True, description="An enum value, unit code, USCC or region code; TOTAL in total.")
    label = graphene.String(required=True, description="Its name, Chinese first.")
    count = graphene.Int(required=True, description="Records in [from, to].")
    previous_count = graphene.Int(required=True, description="Records in [previousFrom, previousTo].")
    change = graphene.Int(required=True, description="count − previousCount.")
    change_rate = graphene.Float(description="change / previousCount; null when previousCount is 0.")


class TrendReport(graphene.ObjectType):
    unit = graphene.Field(ReportUnit, required=True)
    by = graphene.Field(TrendDimension, required=True)
    compare_with = graphene.Field(TrendComparison, required=True)
    from_ = graphene.Date(required=True, name="from")
    to = graphene.Date(required=True)
    previous_from = graphene.Date(required=True)
    previous_to = graphene.Date(required=True)
    total = graphene.Field(TrendRow, required=True, description="Every key together.")
    rows = graphene.List(graphene.NonNull(TrendRow), required=True,
                         description="The `top` keys by count, then change, then key.")

    @staticmethod
    def resolve_from_(root: analysis.TrendReport, info: graphene.ResolveInfo) -> date:
        return root.date_from

    @staticmethod
    def resolve_to(root: analysis.TrendReport, info: graphene.ResolveInfo) -> date:
        return root.date_to


class SeriesPoint(graphene.ObjectType):
    start = graphene.Date(required=True, description="The day, the ISO week's Monday or the month's first day.")
    count = graphene.Int(required=True, description="Records received on the point's days inside [from, to].")


TRENDS_ARGS: dict[str, Any] = dict(
    unit=graphene.String(required=True),
    from_=graphene.Date(required=True, name="from"),
    to=graphene.Date(required=True),
    by=TrendDimension(required=True),
    compare_with=TrendComparison(default_value="PREVIOUS_PERIOD"),
    filter=ComplaintFilter(),
    top=graphene.Int(default_value=20, description=f"0 to {analysis.MAX_TOP}."),
)
SERIES_ARGS: dict[str, Any] = dict(
    unit=graphene.String(required=True),
    from_=graphene.Date(required=True, name="from"),
    to=graphene.Date(required=True),
    interval=Interval(required=True),
    filter=ComplaintFilter(),
)


def _name(value: Any) -> str:
    """An enum argument as its name (graphene hands in the member's value)."""
    return str(getattr(value, "value", value))


async def _analysed(ctx: RequestContext, unit: str, flt: dict[str, Any] | None,
                    run: Callable[[AsyncSession, list[ColumnElement[bool]]], Awaitable[Any]]) -> Any:
    """Role, jurisdiction and filter checks, then `run(session, conditions)` with AnalysisError as GraphQL errors."""
    if not any(ctx.principal.has(role) for role in ANALYSTS):
        raise errors.forbidden("analysis needs the role 'supervisor' or 'evaluator'")
    target = await ctx.loaders.unit.load(unit)
    if target is None or not ctx.sees_unit(target):
        # An unknown unit is refused like a foreign one: the answer must not reveal which codes exist.
        raise errors.forbidden(f"unit {unit} is not your unit nor below it")
    try:
        async with ctx.sessionmaker() as session:
            return await run(session, await analysis.filtered(session, flt))
    except FilterError as exc:
        raise errors.bad_input(str(exc), argument="filter") from None
    except AnalysisError as exc:
        raise errors.GatewayError(exc.code, str(exc)) from None


async def resolve_trends(info: graphene.ResolveInfo, unit: str, date_from: date, date_to: date, by: Any,
                         compare_with: Any, flt: dict[str, Any] | None, top: int | None) -> analysis.TrendReport:
    ctx = context_of(info)
    # An explicit null for an argument with a default means the default.
    comparison = "PREVIOUS_PERIOD" if compare_with is None else _name(compare_with)
    count = 20 if top is None else top
    return await _analysed(ctx, unit, flt, lambda session, conditions: analysis.trends(
        session, unit, date_from, date_to, _name(by), comparison, conditions, count))


async def resolve_series(info: graphene.ResolveInfo, unit: str, date_from: date, date_to: date, interval: Any,
                         flt: dict[str, Any] | None) -> list[analysis.SeriesPoint]:
    ctx = context_of(info)
    return await _analysed(ctx, unit, flt, lambda session, conditions: analysis.series(
        session, unit, date_from, date_to, _name(interval), conditions))
