"""`alerts`: early-warning alerts (动态预警, gateway/flags/alerts.py) of the caller's jurisdiction."""

from __future__ import annotations

from datetime import date
from typing import Any

import graphene

from gateway.api.gql import errors
from gateway.api.gql.context import context_of
from gateway.api.gql.listing import MAX_FIRST
from gateway.api.gql.scalars import DateTime
from gateway.flags.alerts import list_alerts


class EarlyWarning(graphene.ObjectType):
    class Meta:
        description = "A county's count of one category on one day, far above its trailing 28 days."

    alert_id = graphene.ID(required=True)
    unit_code = graphene.String(required=True, description="The county (level 4).")
    category = graphene.String(required=True)
    day = graphene.Date(required=True, description="A calendar day in Asia/Shanghai.")
    count = graphene.Int(required=True)
    baseline = graphene.Float(required=True, description="Expected daily count from the trailing 28 days.")
    threshold = graphene.Int(required=True, description="The smallest count that alerts on that baseline.")
    raised_at = DateTime(required=True)
    updated_at = DateTime(required=True)


async def resolve_alerts(info: graphene.ResolveInfo, unit: str | None, since: date | None, first: int) -> Any:
    ctx = context_of(info)
    ctx.require("reader")
    if not 1 <= first <= MAX_FIRST:
        raise errors.bad_input(f"first must be between 1 and {MAX_FIRST}, got {first}", argument="first")
    async with ctx.sessionmaker() as session:
        return await list_alerts(session, unit=unit, since=since, jurisdiction=ctx.jurisdiction,
                                 first=first)
