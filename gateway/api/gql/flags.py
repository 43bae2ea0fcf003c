"""`creditFlags`: complaint flags (external-systems.md) with their delivery state, from the flags outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import graphene

from gateway.api.gql import enums, errors
from gateway.api.gql.context import context_of
from gateway.api.gql.listing import MAX_FIRST, PageInfo
from gateway.api.gql.scalars import DateTime
from gateway.flags.store import list_flags


class CreditFlag(graphene.ObjectType):
    class Meta:
        description = "A complaint flag as raised by the gateway, and where its delivery to the credit system stands."

    flag_id = graphene.ID(required=True)
    uscc = graphene.String(required=True)
    reason = graphene.Field(enums.FlagReason, required=True)
    severity = graphene.Field(enums.Severity, required=True)
    complaint_ids = graphene.List(graphene.NonNull(graphene.ID), required=True)
    window_start = DateTime(required=True)
    window_end = DateTime(required=True)
    issued_by = graphene.String(required=True)
    issued_at = DateTime(required=True)
    updated_at = DateTime()
    delivery_state = graphene.Field(enums.DeliveryState, required=True)
    delivery_attempts = graphene.Int(required=True)
    delivered_at = DateTime()
    delivered_severity = graphene.Field(enums.Severity, description="What the credit system holds, once sent.")
    last_error = graphene.String()


class CreditFlagEdge(graphene.ObjectType):
    cursor = graphene.String(required=True)
    node = graphene.Field(CreditFlag, required=True)


class CreditFlagConnection(graphene.ObjectType):
    edges = graphene.List(graphene.NonNull(CreditFlagEdge), required=True)
    nodes = graphene.List(graphene.NonNull(CreditFlag), required=True)
    page_info = graphene.Field(PageInfo, required=True)

    @staticmethod
    def resolve_edges(root: Any, info: graphene.ResolveInfo) -> list[dict[str, Any]]:
        return [{"cursor": f.cursor, "node": f} for f in root.items]

    @staticmethod
    def resolve_nodes(root: Any, info: graphene.ResolveInfo) -> list[Any]:
        return list(root.items)

    @staticmethod
    def resolve_page_info(root: Any, info: graphene.ResolveInfo) -> PageInfo:
        return PageInfo(has_next_page=root.has_next_page, end_cursor=root.end_cursor)


async def resolve_credit_flags(info: graphene.ResolveInfo, since: datetime | None, first: int,
                               after: str | None) -> Any:
    ctx = context_of(info)
    ctx.require("credit")
    if not 0 <= first <= MAX_FIRST:
        raise errors.bad_input(f"first must be between 0 and {MAX_FIRST}, got {first}", argument="first")
    if since is not None and since.tzinfo is None:
        raise errors.bad_input("since: give an offset, e.g. 2024-01-01T00:00:00+08:00", argument="since")
    if first == 0:
        return _Empty()
    try:
        async with ctx.sessionmaker() as session:
            return await list_flags(session, since=since, first=first, after=after,
                                    jurisdiction=ctx.jurisdiction)
    except ValueError as exc:  # bad cursor
        raise errors.bad_input(str(exc), argument="after") from None


class _Empty:
    items: list[Any] = []
    has_next_page = False
    end_cursor = None
