"""`auditLog`: who read which complainant's personal data in clear, for holders of the `pii` role."""

from __future__ import annotations

from typing import Any

import graphene

from gateway.api.gql import errors
from gateway.api.gql.context import context_of
from gateway.api.gql.listing import MAX_FIRST, PageInfo
from gateway.api.gql.scalars import DateTime
from gateway.complaints.pii import list_reads


class PiiReadEntry(graphene.ObjectType):
    id = graphene.ID(required=True)
    at = DateTime(required=True)
    actor = graphene.String(required=True, description="The reader's token subject.")
    actor_unit = graphene.String(required=True)
    complaint_id = graphene.ID(required=True)
    fields = graphene.List(graphene.NonNull(graphene.String), required=True)
    request_id = graphene.String()

    @staticmethod
    def resolve_fields(root: Any, info: graphene.ResolveInfo) -> list[str]:
        return [f for f in root.fields.split(",") if f]


class PiiReadConnection(graphene.ObjectType):
    nodes = graphene.List(graphene.NonNull(PiiReadEntry), required=True)
    page_info = graphene.Field(PageInfo, required=True)


async def resolve_audit_log(info: graphene.ResolveInfo, complaint_id: str | None, actor: str | None, first: int,
                            after: str | None) -> dict[str, Any]:
    ctx = context_of(info)
    ctx.require("pii")
    if not 0 <= first <= MAX_FIRST:
        raise errors.bad_input(f"first must be between 0 and {MAX_FIRST}, got {first}", argument="first")
    before_id = None
    if after is not None:
        if not (after.isascii() and after.isdigit() and len(after) <= 18):  # an id: ASCII digits, within BIGINT
            raise errors.bad_input("after: not a cursor of this list", argument="after")
        before_id = int(after)
    async with ctx.sessionmaker() as session:
        rows = await list_reads(session, ctx.complaint_filter(), complaint_id=complaint_id, actor=actor,
                                first=first, before_id=before_id)
    page = rows[:first]
    return {
        "nodes": page,
        "page_info": PageInfo(has_next_page=len(rows) > first, end_cursor=str(page[-1].id) if page else None),
    }
