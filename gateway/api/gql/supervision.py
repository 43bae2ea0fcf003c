"""Supervision in GraphQL (supervision.md): `deadlineWatch`, `deadlineLights`, `supervisionOrders`,
`issueSupervision`, `respondSupervision` and `Complaint.supervisionOrders`.

Thin: each resolver hands the caller's principal to `gateway.supervision`, which checks roles and
jurisdiction, and turns its `SupervisionError` into a GraphQL error with the same code. What an order shows
is cut to the caller's jurisdiction here: only visible records, and responses of its own subtree or its
ancestors.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import graphene

from gateway.api.gql import enums, errors
from gateway.api.gql.context import RequestContext, context_of
from gateway.api.gql.listing import PageInfo
from gateway.api.gql.scalars import DateTime
from gateway.api.gql.types import Complaint, OrgUnit
from gateway.core.db import transaction
from gateway.reports.facts import KpiConfig, kpi_config
from gateway.supervision.access import SupervisionError
from gateway.supervision.lights import LIGHTS, WatchPage, deadline_lights, deadline_watch
from gateway.supervision.orders import (
    STATES,
    Order,
    OrderPage,
    issue_order,
    list_orders,
    respond_order,
    response_visible,
)

Light = graphene.Enum("Light", [(v, v) for v in LIGHTS], description="A deadline light (时限预警).")
SupervisionState = graphene.Enum(
    "SupervisionState", [(v, v) for v in STATES], description="Where a supervision order (督办单) stands, at now."
)

T = TypeVar("T")


async def _domain(call: Callable[[], Awaitable[T]]) -> T:
    """Run a domain call; its refusals become GraphQL errors with their code."""
    try:
        return await call()
    except SupervisionError as exc:
        extra = {"argument": exc.argument} if exc.argument else {}
        raise errors.GatewayError(exc.code, str(exc), **extra) from None


def _config(ctx: RequestContext) -> KpiConfig:
    # The one calendar and policy cache of the KPI facts: lights and reports use the same.
    return kpi_config(ctx.settings.holidays_file, ctx.settings.policy_file)


def _value(v: Any) -> Any:
    return getattr(v, "value", v)


# ---------------------------------------------------------------------------------------------- lights


class WatchedDeadline(graphene.ObjectType):
    class Meta:
        description = "An open obligation (kpi.md OVERDUE or PENDING) with its light."

    complaint = graphene.Field(Complaint, required=True)
    code = graphene.Field(enums.ObligationCode, required=True)
    due_date = graphene.Date(required=True)
    days_left = graphene.Int(required=True, description="Working days after asOf's date up to the due date.")
    light = graphene.Field(Light, required=True)

    @staticmethod
    def resolve_complaint(root: Any, info: graphene.ResolveInfo) -> Awaitable[Any]:
        return context_of(info).loaders.complaint.load(root.complaint_id)


class WatchedDeadlineEdge(graphene.ObjectType):
    cursor = graphene.String(required=True)
    node = graphene.Field(WatchedDeadline, required=True)


class DeadlineWatchConnection(graphene.ObjectType):
    edges = graphene.List(graphene.NonNull(WatchedDeadlineEdge), required=True)
    nodes = graphene.List(graphene.NonNull(WatchedDeadline), required=True)
    page_info = graphene.Field(PageInfo, required=True)
    total_count = graphene.Int(required=True, description="Every matching obligation, not just this page.")

    @staticmethod
    def resolve_edges(root: WatchPage, info: graphene.ResolveInfo) -> list[dict[str, Any]]:
        return [{"cursor": n.cursor, "node": n} for n in root.nodes]

    @staticmethod
    def resolve_nodes(root: WatchPage, info: graphene.ResolveInfo) -> list[Any]:
        return root.nodes

    @staticmethod
    def resolve_page_info(root: WatchPage, info: graphene.ResolveInfo) -> PageInfo:
        return PageInfo(has_next_page=root.has_next, end_cursor=root.nodes[-1].cursor if root.nodes else None)

    @staticmethod
    async def resolve_total_count(root: WatchPage, info: graphene.ResolveInfo) -> int:
        async with context_of(info).sessionmaker() as session:
            return await root.total_count(session)


class DeadlineLightRow(graphene.ObjectType):
    unit = graphene.Field(OrgUnit, required=True)
    red = graphene.Int(required=True)
    yellow = graphene.Int(required=True)
    green = graphene.Int(required=True)


async def resolve_deadline_watch(info: graphene.ResolveInfo, unit: str, light: Any, code: Any,
                                 as_of: datetime | None, first: int | None, after: str | None) -> WatchPage:
    ctx = context_of(info)

    async def call() -> WatchPage:
        async with ctx.sessionmaker() as session:
            return await deadline_watch(session, ctx.principal, unit, _value(light), _value(code), as_of, first,
                                        after, _config(ctx), ctx.settings.yellow_days)

    return await _domain(call)


async def resolve_deadline_lights(info: graphene.ResolveInfo, unit: str, level: int | None,
                                  as_of: datetime | None) -> list[Any]:
    ctx = context_of(info)

    async def call() -> list[Any]:
        async with ctx.sessionmaker() as session:
            return await deadline_lights(session, ctx.principal, unit, level, as_of, _config(ctx),
                                         ctx.settings.yellow_days)

    return await _domain(call)


# ---------------------------------------------------------------------------------------------- orders


class SupervisionResponse(graphene.ObjectType):
    unit = graphene.Field(OrgUnit, required=True)
    at = DateTime(required=True)
    note = graphene.String(required=True)

    @staticmethod
    def resolve_unit(root: Any, info: graphene.ResolveInfo) -> Awaitable[Any]:
        return context_of(info).loaders.unit.load(root.unit)


class SupervisionOrder(graphene.ObjectType):
    class Meta:
        description = "A supervision order (督办单) a superior unit issued about records handled below it."

    id = graphene.ID(required=True)
    issued_by = graphene.Field(OrgUnit, required=True)
    issued_at = DateTime(required=True)
    note = graphene.String(required=True)
    respond_within = graphene.Int(required=True, description="Working days given to respond.")
    due_date = graphene.Date(required=True)
    complaints = graphene.List(graphene.NonNull(Complaint), required=True,
                               description="The order's records that the caller may see.")
    responses = graphene.List(graphene.NonNull(SupervisionResponse), required=True,
                              description="Every response, oldest first (those of sibling units left out).")
    state = graphene.Field(SupervisionState, required=True)

    @staticmethod
    def resolve_issued_by(root: Order, info: graphene.ResolveInfo) -> Awaitable[Any]:
        return context_of(info).loaders.unit.load(root.issued_by)

    @staticmethod
    async def resolve_complaints(root: Order, info: graphene.ResolveInfo) -> list[Any]:
        ctx = context_of(info)
        rows = await ctx.loaders.complaint.load_many(list(root.complaint_ids))
        return [r for r in rows if r is not None and ctx.sees_complaint(r)]

    @staticmethod
    async def resolve_responses(root: Order, info: graphene.ResolveInfo) -> list[Any]:
        ctx = context_of(info)
        if not root.responses:
            return []
        caller = await ctx.loaders.unit.load(ctx.principal.unit)
        units = await ctx.loaders.unit.load_many([r.unit for r in root.responses])
        return [r for r, u in zip(root.responses, units, strict=True) if caller and response_visible(caller, u)]

    @staticmethod
    def resolve_state(root: Order, info: graphene.ResolveInfo) -> str:
        return root.state_at(datetime.now(UTC))


class SupervisionOrderEdge(graphene.ObjectType):
    cursor = graphene.String(required=True)
    node = graphene.Field(SupervisionOrder, required=True)


class SupervisionOrderConnection(graphene.ObjectType):
    edges = graphene.List(graphene.NonNull(SupervisionOrderEdge), required=True)
    nodes = graphene.List(graphene.NonNull(SupervisionOrder), required=True)
    page_info = graphene.Field(PageInfo, required=True)
    total_count = graphene.Int(required=True, description="Every matching order, not just this page.")

    @staticmethod
    def resolve_edges(root: OrderPage, info: graphene.ResolveInfo) -> list[dict[str, Any]]:
        return [{"cursor": root.cursor(o), "node": o} for o in root.orders]

    @staticmethod
    def resolve_nodes(root: OrderPage, info: graphene.ResolveInfo) -> list[Any]:
        return root.orders

    @staticmethod
    def resolve_page_info(root: OrderPage, info: graphene.ResolveInfo) -> PageInfo:
        end = root.cursor(root.orders[-1]) if root.orders else None
        return PageInfo(has_next_page=root.has_next, end_cursor=end)

    @staticmethod
    async def resolve_total_count(root: OrderPage, info: graphene.ResolveInfo) -> int:
        async with context_of(info).sessionmaker() as session:
            return await root.total_count(session)


async def resolve_supervision_orders(info: graphene.ResolveInfo, unit: str, state: Any, first: int | None,
                                     after: str | None) -> OrderPage:
    ctx = context_of(info)

    async def call() -> OrderPage:
        async with ctx.sessionmaker() as session:
            return await list_orders(session, ctx.principal, unit, _value(state), first, after)

    return await _domain(call)


async def issue_supervision(info: graphene.ResolveInfo, complaint_ids: list[str], note: str,
                            respond_within: int | None, idempotency_key: str | None) -> Order:
    ctx = context_of(info)

    async def call() -> Order:
        async with transaction(ctx.sessionmaker) as session:
            order, _ = await issue_order(session, ctx.principal, complaint_ids, note, respond_within,
                                         idempotency_key, _config(ctx).calendar)
            return order

    return await _domain(call)


async def respond_supervision(info: graphene.ResolveInfo, order_id: str, note: str) -> Order:
    ctx = context_of(info)

    async def call() -> Order:
        async with transaction(ctx.sessionmaker) as session:
            return await respond_order(session, ctx.principal, order_id, note)

    return await _domain(call)


class SupervisionQuery(graphene.ObjectType):
    """The supervision root fields, mixed into `Query`."""

    deadline_watch = graphene.Field(
        DeadlineWatchConnection,
        unit=graphene.String(required=True),
        light=Light(),
        code=enums.ObligationCode(),
        as_of=DateTime(),
        first=graphene.Int(default_value=50, description="At most 500."),
        after=graphene.String(),
        required=True,
        description="Open obligations of the records in the unit's subtree, by due date, record id, code "
                    "(roles supervisor or evaluator).",
    )
    deadline_lights = graphene.Field(
        graphene.List(graphene.NonNull(DeadlineLightRow)),
        unit=graphene.String(required=True),
        level=graphene.Int(),
        as_of=DateTime(),
        required=True,
        description="Red/yellow/green counts per unit at `level` (default: the level below), then the whole "
                    "subtree as the last row (roles supervisor or evaluator).",
    )
    supervision_orders = graphene.Field(
        SupervisionOrderConnection,
        unit=graphene.String(required=True),
        state=SupervisionState(),
        first=graphene.Int(default_value=50, description="At most 500."),
        after=graphene.String(),
        required=True,
        description="Orders issued in the unit's subtree or touching its records, newest first "
                    "(roles supervisor, operator or evaluator).",
    )

    @staticmethod
    async def resolve_deadline_watch(root: Any, info: graphene.ResolveInfo, unit: str, light: Any = None,
                                     code: Any = None, as_of: datetime | None = None, first: int | None = None,
                                     after: str | None = None) -> Any:
        return await resolve_deadline_watch(info, unit, light, code, as_of, first, after)

    @staticmethod
    async def resolve_deadline_lights(root: Any, info: graphene.ResolveInfo, unit: str, level: int | None = None,
                                      as_of: datetime | None = None) -> Any:
        return await resolve_deadline_lights(info, unit, level, as_of)

    @staticmethod
    async def resolve_supervision_orders(root: Any, info: graphene.ResolveInfo, unit: str, state: Any = None,
                                         first: int | None = None, after: str | None = None) -> Any:
        return await resolve_supervision_orders(info, unit, state, first, after)


class SupervisionMutation(graphene.ObjectType):
    """The supervision mutations, mixed into `Mutation`."""

    issue_supervision = graphene.Field(
        SupervisionOrder,
        complaint_ids=graphene.List(graphene.NonNull(graphene.ID), required=True, description="1 to 100."),
        note=graphene.String(required=True, description="1 to 500 characters."),
        respond_within=graphene.Int(default_value=3, description="Working days, 1 to 30."),
        idempotency_key=graphene.String(description="The same key from the same unit returns the first order."),
        required=True,
        description="Press units below yours about records they handle (role supervisor).",
    )
    respond_supervision = graphene.Field(
        SupervisionOrder,
        order_id=graphene.ID(required=True),
        note=graphene.String(required=True, description="1 to 500 characters."),
        required=True,
        description="Answer a supervision order about records your unit handles (role operator).",
    )

    @staticmethod
    async def resolve_issue_supervision(root: Any, info: graphene.ResolveInfo, complaint_ids: list[str], note: str,
                                        respond_within: int | None = None,
                                        idempotency_key: str | None = None) -> Any:
        return await issue_supervision(info, complaint_ids, note, respond_within, idempotency_key)

    @staticmethod
    async def resolve_respond_supervision(root: Any, info: graphene.ResolveInfo, order_id: str, note: str) -> Any:
        return await respond_supervision(info, order_id, note)
