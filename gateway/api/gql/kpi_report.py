"""`kpiReport`: the KPI report of kpi.md, built by `gateway.reports.build` and shaped as interfaces.md's document.

The JSON document's maps become lists of {key, count} pairs here, since GraphQL field names cannot be
enum values such as `12315`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import graphene

from gateway.api.gql import enums, errors
from gateway.api.gql.context import context_of
from gateway.api.gql.scalars import DateTime
from gateway.reports.build import build_report
from gateway.supervision.report import count_orders


class ReportUnit(graphene.ObjectType):
    code = graphene.String(required=True)
    name = graphene.String(required=True)
    level = graphene.Int(required=True)


class KindCount(graphene.ObjectType):
    kind = graphene.Field(enums.Kind, required=True)
    count = graphene.Int(required=True)


class ChannelCount(graphene.ObjectType):
    channel = graphene.Field(enums.Channel, required=True)
    count = graphene.Int(required=True)


class HotlineCount(graphene.ObjectType):
    hotline = graphene.String(required=True)
    count = graphene.Int(required=True)


class ObligationTimeliness(graphene.ObjectType):
    code = graphene.Field(enums.ObligationCode, required=True)
    on_time = graphene.Int(required=True)
    late = graphene.Int(required=True)
    overdue = graphene.Int(required=True)
    rate = graphene.Float()


class SupervisionCounts(graphene.ObjectType):
    class Meta:
        description = "Supervision orders (督办单) issued at or before asOf on the row's records, states at asOf."

    issued = graphene.Int(required=True)
    responded_on_time = graphene.Int(required=True)
    responded_late = graphene.Int(required=True)
    overdue = graphene.Int(required=True)
    rate = graphene.Float(description="on time / (on time + late + overdue); null when that is 0.")


class KpiRow(graphene.ObjectType):
    unit = graphene.Field(ReportUnit, required=True)
    received = graphene.Int(required=True)
    received_by_kind = graphene.List(graphene.NonNull(KindCount), required=True)
    received_by_channel = graphene.List(graphene.NonNull(ChannelCount), required=True)
    received_by_hotline = graphene.List(graphene.NonNull(HotlineCount), required=True)
    on_time = graphene.Int(required=True)
    late = graphene.Int(required=True)
    overdue = graphene.Int(required=True)
    timeliness_rate = graphene.Float()
    timeliness_by_obligation = graphene.List(graphene.NonNull(ObligationTimeliness), required=True)
    reply_rate = graphene.Float()
    callback_rate = graphene.Float()
    satisfaction_rate = graphene.Float()
    mediation_success_rate = graphene.Float()
    case_filing_rate = graphene.Float()
    recovered_amount = graphene.String(required=True, description="CNY, exact decimal")
    supervision = graphene.Field(SupervisionCounts, required=True)
    score = graphene.Float()
    rank = graphene.Int()


class KpiReport(graphene.ObjectType):
    unit = graphene.Field(ReportUnit, required=True)
    level = graphene.Int(required=True)
    from_ = graphene.Date(required=True, name="from")
    to = graphene.Date(required=True)
    as_of = DateTime(required=True)
    scheme = graphene.String(required=True)
    calendar_complete = graphene.Boolean(required=True)
    policy_versions = graphene.List(graphene.NonNull(graphene.String), required=True)
    total = graphene.Field(KpiRow, required=True)
    rows = graphene.List(graphene.NonNull(KpiRow), required=True)


def _row(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        **doc,
        "received_by_kind": [{"kind": k, "count": n} for k, n in doc["received_by_kind"].items()],
        "received_by_channel": [{"channel": k, "count": n} for k, n in doc["received_by_channel"].items()],
        "received_by_hotline": [{"hotline": k, "count": n} for k, n in doc["received_by_hotline"].items()],
        "timeliness_by_obligation": [{"code": k, **v} for k, v in doc["timeliness_by_obligation"].items()],
    }


def report_from_document(doc: dict[str, Any]) -> dict[str, Any]:
    """interfaces.md's JSON document (dates and instants as strings) as the values KpiReport resolves."""
    return {
        **doc,
        "from_": date.fromisoformat(doc["from"]) if isinstance(doc["from"], str) else doc["from"],
        "to": date.fromisoformat(doc["to"]) if isinstance(doc["to"], str) else doc["to"],
        "as_of": datetime.fromisoformat(doc["as_of"]) if isinstance(doc["as_of"], str) else doc["as_of"],
        "total": _row(doc["total"]),
        "rows": [_row(r) for r in doc["rows"]],
    }


async def resolve_kpi_report(
    info: graphene.ResolveInfo, unit: str, level: int | None, from_: date, to: date, as_of: datetime | None,
    scheme: str | None,
) -> dict[str, Any]:
    ctx = context_of(info)
    ctx.require("evaluator")
    target = await ctx.loaders.unit.load(unit)
    if target is None or not ctx.sees_unit(target):
        # An unknown unit is refused like a foreign one: the answer must not reveal which codes exist.
        raise errors.forbidden(f"unit {unit} is not your unit nor below it")
    if as_of is not None and as_of.tzinfo is None:
        raise errors.bad_input("asOf: give an offset, e.g. 2024-06-30T23:59:59+08:00", argument="asOf")
    try:
        async with ctx.sessionmaker() as session:
            doc = await build_report(session, unit=unit, level=level, date_from=from_, date_to=to, as_of=as_of,
                                     scheme=scheme, orders=count_orders)
    except ValueError as exc:  # the report engine's word for a bad level, range or scheme
        raise errors.GatewayError(getattr(exc, "code", errors.BAD_USER_INPUT), str(exc)) from None
    return report_from_document(doc)
