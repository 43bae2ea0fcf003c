"""`complaints(...)` lists: filters, the caller's jurisdiction, and keyset pagination by (received_at, id)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import graphene
from sqlalchemy import Table, and_, func, or_, select

from gateway.api.gql import enums, errors
from gateway.api.gql.context import RequestContext, context_of
from gateway.api.gql.loaders import COMPLAINT_SELECT
from gateway.api.gql.scalars import DateTime
from gateway.complaints.filters import USCC_PATTERN, FilterError, filter_conditions
from gateway.complaints.models import Complaint
from gateway.core.cursor import decode_cursor, encode_cursor
from gateway.reports.deadlines import ensure_facts_current, overdue_condition

MAX_FIRST = 500
_COMPLAINTS: Table = Complaint.__table__  # type: ignore[assignment]
_USCC = USCC_PATTERN


class ComplaintFilter(graphene.InputObjectType):
    class Meta:
        description = "Every given condition must hold; a list matches any of its values."

    kind = graphene.List(graphene.NonNull(enums.Kind))
    channel = graphene.List(graphene.NonNull(enums.Channel))
    hotline = graphene.List(graphene.NonNull(graphene.String))
    urgency = graphene.List(graphene.NonNull(enums.Urgency))
    category = graphene.List(graphene.NonNull(enums.Category))
    unit = graphene.String(description="Handled by this unit or below it.")
    respondent_uscc = graphene.String()
    received_from = DateTime(description="Inclusive.")
    received_to = DateTime(description="Exclusive.")
    status = graphene.List(graphene.NonNull(enums.ComplaintStatus))
    overdue = graphene.Boolean(description="With (true) or without (false) an obligation past its due date.")


class PageInfo(graphene.ObjectType):
    has_next_page = graphene.Boolean(required=True)
    end_cursor = graphene.String()


class ComplaintEdge(graphene.ObjectType):
    cursor = graphene.String(required=True)
    node = graphene.Field("gateway.api.gql.types.Complaint", required=True)


@dataclass
class Page:
    rows: list[Any]
    has_next: bool
    query: ComplaintQuery

    @property
    def edges(self) -> list[dict[str, Any]]:
        return [{"cursor": row_cursor(r), "node": r} for r in self.rows]


class ComplaintConnection(graphene.ObjectType):
    edges = graphene.List(graphene.NonNull(ComplaintEdge), required=True)
    nodes = graphene.List(graphene.NonNull("gateway.api.gql.types.Complaint"), required=True)
    page_info = graphene.Field(PageInfo, required=True)
    total_count = graphene.Int(required=True, description="Every matching record, not just this page.")

    @staticmethod
    def resolve_edges(root: Page, info: graphene.ResolveInfo) -> list[dict[str, Any]]:
        return root.edges

    @staticmethod
    def resolve_nodes(root: Page, info: graphene.ResolveInfo) -> list[Any]:
        return root.rows

    @staticmethod
    def resolve_page_info(root: Page, info: graphene.ResolveInfo) -> PageInfo:
        return PageInfo(has_next_page=root.has_next, end_cursor=row_cursor(root.rows[-1]) if root.rows else None)

    @staticmethod
    async def resolve_total_count(root: Page, info: graphene.ResolveInfo) -> int:
        return await root.query.count()


def row_cursor(row: Any) -> str:
    return encode_cursor(row.received_at, row.id)


def _position(cursor: str) -> tuple[datetime, str]:
    try:
        return decode_cursor(cursor)
    except ValueError:
        raise errors.bad_input("after: not a cursor of this list", argument="after") from None


def check_first(first: int) -> None:
    if not 0 <= first <= MAX_FIRST:
        raise errors.bad_input(f"first must be between 0 and {MAX_FIRST}, got {first}", argument="first")


@dataclass
class ComplaintQuery:
    """The records a caller may see, narrowed by conditions; newest first."""

    ctx: RequestContext
    conditions: list[Any] = field(default_factory=list)

    @classmethod
    def for_caller(cls, ctx: RequestContext) -> ComplaintQuery:
        return cls(ctx, [ctx.complaint_filter()])

    @classmethod
    def for_enterprise(cls, ctx: RequestContext, uscc: str) -> ComplaintQuery:
        return cls(ctx, [ctx.complaint_filter(), _COMPLAINTS.c.respondent_uscc == uscc])

    async def apply(self, flt: dict[str, Any] | None) -> ComplaintQuery:
        try:
            parsed = await filter_conditions(flt, self._unit_level)
        except FilterError as exc:
            raise errors.bad_input(str(exc), argument="filter") from None
        self.conditions += parsed.conditions
        if parsed.overdue is not None:
            # SQL over the stored due dates (gateway.reports.deadlines): exact whatever the list's size.
            await ensure_facts_current(self.ctx.engine)
            overdue = overdue_condition(_COMPLAINTS.c.id, datetime.now(UTC))
            self.conditions.append(overdue if parsed.overdue else ~overdue)
        return self

    async def _unit_level(self, code: str) -> int | None:
        unit = await self.ctx.loaders.unit.load(code)
        return None if unit is None else int(unit.level)

    async def _slice(self, after: str | None, limit: int) -> list[Any]:
        c = _COMPLAINTS.c
        stmt = COMPLAINT_SELECT.where(*self.conditions)
        if after:
            at, rid = _position(after)
            stmt = stmt.where(or_(c.received_at < at, and_(c.received_at == at, c.id < rid)))
        return await self.ctx.loaders._rows(stmt.order_by(c.received_at.desc(), c.id.desc()).limit(limit))

    async def page(self, first: int, after: str | None) -> Page:
        check_first(first)
        rows = await self._slice(after, first + 1) if first else []
        self.ctx.loaders.remember(rows[:first])
        return Page(rows[:first], len(rows) > first, self)

    async def count(self) -> int:
        rows = await self.ctx.loaders._rows(select(func.count()).select_from(_COMPLAINTS).where(*self.conditions))
        return int(rows[0][0])

    async def ids(self, limit: int) -> list[str]:
        c = _COMPLAINTS.c
        stmt = select(c.id).where(*self.conditions).order_by(c.received_at.desc(), c.id.desc()).limit(limit)
        return [r[0] for r in await self.ctx.loaders._rows(stmt)]




async def resolve_complaints(info: graphene.ResolveInfo, flt: dict[str, Any] | None, first: int,
                             after: str | None) -> Page:
    ctx = context_of(info)
    check_first(first)
    query = await ComplaintQuery.for_caller(ctx).apply(flt)
    return await query.page(first, after)
