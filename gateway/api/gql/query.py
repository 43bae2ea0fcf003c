"""The root query: lookups answer null outside the caller's jurisdiction, lists are filtered by it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import graphene

from gateway.api.gql import errors
from gateway.api.gql.alerts import EarlyWarning, resolve_alerts
from gateway.api.gql.analysis import SERIES_ARGS, TRENDS_ARGS, SeriesPoint, TrendReport, resolve_series, resolve_trends
from gateway.api.gql.audit import PiiReadConnection, resolve_audit_log
from gateway.api.gql.context import context_of
from gateway.api.gql.flags import CreditFlagConnection, resolve_credit_flags
from gateway.api.gql.kpi_report import KpiReport, resolve_kpi_report
from gateway.api.gql.listing import _USCC, ComplaintConnection, ComplaintFilter, ComplaintQuery, resolve_complaints
from gateway.api.gql.scalars import DateTime
from gateway.api.gql.supervision import SupervisionQuery
from gateway.api.gql.types import Complaint, Enterprise, EnterpriseRef, OrgUnit


class Query(SupervisionQuery, graphene.ObjectType):
    complaint = graphene.Field(Complaint, id=graphene.ID(required=True))
    complaints = graphene.Field(
        ComplaintConnection,
        filter=ComplaintFilter(),
        first=graphene.Int(default_value=50, description="At most 500."),
        after=graphene.String(),
        required=True,
    )
    enterprise = graphene.Field(Enterprise, uscc=graphene.String(required=True))
    org_unit = graphene.Field(OrgUnit, code=graphene.String(required=True))
    kpi_report = graphene.Field(
        KpiReport,
        unit=graphene.String(required=True),
        level=graphene.Int(),
        from_=graphene.Date(required=True, name="from"),
        to=graphene.Date(required=True),
        as_of=DateTime(),
        scheme=graphene.String(),
        required=True,
    )
    credit_flags = graphene.Field(
        CreditFlagConnection,
        since=DateTime(),
        first=graphene.Int(default_value=50, description="At most 500."),
        after=graphene.String(),
        required=True,
    )
    alerts = graphene.Field(
        graphene.List(graphene.NonNull(EarlyWarning)),
        unit=graphene.String(description="A unit: alerts of the counties at or below it. Default: all visible."),
        since=graphene.Date(description="First day listed (Asia/Shanghai)."),
        first=graphene.Int(default_value=100, description="At most 500; newest day first."),
        required=True,
        description="Early-warning alerts (动态预警) in the caller's jurisdiction.",
    )
    audit_log = graphene.Field(
        PiiReadConnection,
        complaint_id=graphene.ID(),
        actor=graphene.String(),
        first=graphene.Int(default_value=50, description="At most 500."),
        after=graphene.String(),
        required=True,
        description="Clear reads of personal data, newest first (role `pii`).",
    )
    trends = graphene.Field(
        TrendReport, **TRENDS_ARGS, required=True,
        description="环比/同比: counts by a dimension against an earlier period (roles supervisor, evaluator).",
    )
    series = graphene.Field(
        graphene.List(graphene.NonNull(SeriesPoint)), **SERIES_ARGS, required=True,
        description="Zero-filled counts per day, ISO week or month (roles supervisor, evaluator).",
    )

    @staticmethod
    async def resolve_complaint(root: Any, info: graphene.ResolveInfo, id: str) -> Any:
        ctx = context_of(info)
        ctx.require("reader")
        # A query for the record's incidents needs its incident links before the emergency system can be
        # asked: read in the same round trip as the record, they are off the federated query's critical path.
        # Only ever read if the record turns out visible (Complaint.incidents).
        loader = ctx.loaders.complaint_with_incident_ids if _selects(info, "incidents") else ctx.loaders.complaint
        found = await loader.load(id)
        return found if found is not None and ctx.sees_complaint(found) else None

    @staticmethod
    async def resolve_complaints(root: Any, info: graphene.ResolveInfo, first: int, after: str | None = None,
                                 filter: dict[str, Any] | None = None) -> Any:
        context_of(info).require("reader")
        return await resolve_complaints(info, filter, first, after)

    @staticmethod
    async def resolve_enterprise(root: Any, info: graphene.ResolveInfo, uscc: str) -> Any:
        ctx = context_of(info)
        ctx.require("reader")
        if not _USCC.match(uscc):
            raise errors.bad_input("uscc: not an 18-character Unified Social Credit Code", argument="uscc")
        if await ComplaintQuery.for_enterprise(ctx, uscc).count():
            return EnterpriseRef(uscc)
        # Nothing visible names it: it exists for this caller only if the credit system knows it.
        return EnterpriseRef(uscc) if await ctx.loaders.enterprise.load(uscc) is not None else None

    @staticmethod
    async def resolve_org_unit(root: Any, info: graphene.ResolveInfo, code: str) -> Any:
        ctx = context_of(info)
        ctx.require("reader")
        unit = await ctx.loaders.unit.load(code)
        return unit if unit is not None and ctx.sees_unit(unit) else None

    @staticmethod
    async def resolve_kpi_report(root: Any, info: graphene.ResolveInfo, unit: str, from_: date, to: date,
                                 level: int | None = None, as_of: datetime | None = None,
                                 scheme: str | None = None) -> Any:
        return await resolve_kpi_report(info, unit, level, from_, to, as_of, scheme)

    @staticmethod
    async def resolve_credit_flags(root: Any, info: graphene.ResolveInfo, first: int, since: datetime | None = None,
                                   after: str | None = None) -> Any:
        return await resolve_credit_flags(info, since, first, after)

    @staticmethod
    async def resolve_alerts(root: Any, info: graphene.ResolveInfo, first: int, unit: str | None = None,
                             since: date | None = None) -> Any:
        return await resolve_alerts(info, unit, since, first)

    @staticmethod
    async def resolve_audit_log(root: Any, info: graphene.ResolveInfo, first: int, complaint_id: str | None = None,
                                actor: str | None = None, after: str | None = None) -> Any:
        return await resolve_audit_log(info, complaint_id, actor, first, after)

    @staticmethod
    async def resolve_trends(root: Any, info: graphene.ResolveInfo, unit: str, from_: date, to: date, by: Any,
                             compare_with: Any = None, filter: dict[str, Any] | None = None,
                             top: int | None = None) -> Any:
        return await resolve_trends(info, unit, from_, to, by, compare_with, filter, top)

    @staticmethod
    async def resolve_series(root: Any, info: graphene.ResolveInfo, unit: str, from_: date, to: date, interval: Any,
                             filter: dict[str, Any] | None = None) -> Any:
        return await resolve_series(info, unit, from_, to, interval, filter)

def _selects(info: graphene.ResolveInfo, name: str) -> bool:
    """Whether the field being resolved selects `name` directly (fragments are not looked into)."""
    selection_set = info.field_nodes[0].selection_set
    return selection_set is not None and any(
        getattr(getattr(sel, "name", None), "value", None) == name for sel in selection_set.selections
    )
