"""`subscription { alerts(unit, kinds) }`: the live feed (supervision.md), served over WebSocket by `ws`.

The subscribe resolver checks role and jurisdiction, then registers with this process's `AlertHub`
(`gateway.api.feed`) before it returns, so every alert committed after the subscription is in place reaches
it. A subscriber hears the alerts whose unit lies in `unit`'s subtree, itself within its token's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import graphene

from gateway.api.feed import AlertHub, PlacedAlert
from gateway.api.gql import errors
from gateway.api.gql.context import RequestContext, context_of
from gateway.api.gql.scalars import DateTime
from gateway.api.gql.types import JSON, OrgUnit
from gateway.core.feed import KINDS, FeedAlert
from gateway.units.jurisdiction import Jurisdiction

# Whoever may read records in a jurisdiction may hear what happens there.
LISTENERS = ("supervisor", "evaluator", "operator", "reader")

AlertKind = graphene.Enum(
    "AlertKind", [(k, k) for k in KINDS],
    description="EARLY_WARNING: an early-warning alert is raised; CRITICAL_ESCALATION: a critical record is "
                "escalated to emergency command; SUPERVISION_ISSUED / SUPERVISION_RESPONDED: a supervision order "
                "is issued / answered; FLAG_RAISED: a complaint flag is raised.",
)


@dataclass
class LiveContext(RequestContext):
    """A subscription's context: a request's, plus the process's feed."""

    hub: AlertHub | None = None


class Alert(graphene.ObjectType):
    class Meta:
        description = "Something a superior unit's command centre wants to hear of as it happens."

    kind = graphene.Field(AlertKind, required=True)
    at = DateTime(required=True)
    unit = graphene.Field(OrgUnit, required=True, description="The unit whose subtree it concerns.")
    complaint_ids = graphene.List(graphene.NonNull(graphene.ID), required=True)
    detail = graphene.Field(JSON, required=True, description="What else there is to know: ids, reasons, counts.")

    @staticmethod
    async def resolve_unit(root: FeedAlert, info: graphene.ResolveInfo) -> Any:
        return await context_of(info).units.get(root.unit)


def _accept(where: Jurisdiction, kinds: set[str] | None) -> Any:
    def accept(placed: PlacedAlert) -> bool:
        return (kinds is None or placed.alert.kind in kinds) and where.contains(placed.ancestors)

    return accept


class Subscription(graphene.ObjectType):
    alerts = graphene.Field(
        Alert, required=True, unit=graphene.String(required=True),
        kinds=graphene.List(graphene.NonNull(AlertKind), description="Default: every kind."),
        description="Alerts of `unit`'s subtree as they are committed, on any replica (graphql-transport-ws).",
    )

    @staticmethod
    async def subscribe_alerts(root: Any, info: graphene.ResolveInfo, unit: str, kinds: list[Any] | None = None) -> Any:
        ctx = context_of(info)
        if not any(ctx.principal.has(role) for role in LISTENERS):
            raise errors.forbidden(f"the live feed needs one of the roles {', '.join(LISTENERS)}")
        target = await ctx.units.get(unit)
        if target is None or not ctx.sees_unit(target):
            raise errors.forbidden(f"unit {unit} is not your unit nor below it")
        if kinds is not None and not kinds:
            raise errors.bad_input("kinds: name at least one kind, or leave it out for every kind", argument="kinds")
        hub = getattr(ctx, "hub", None)
        if hub is None:
            raise errors.bad_input("subscriptions are served over WebSocket (graphql-transport-ws) at /graphql")
        wanted = None if kinds is None else {str(getattr(k, "value", k)) for k in kinds}
        try:
            return await hub.subscribe(_accept(Jurisdiction(target.code, int(target.level)), wanted))
        except RuntimeError as exc:
            raise errors.GatewayError(errors.INTERNAL, str(exc)) from None

    @staticmethod
    def resolve_alerts(root: FeedAlert, info: graphene.ResolveInfo, **_: Any) -> FeedAlert:
        return root
