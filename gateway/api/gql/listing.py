"""`complaints(...)` lists: filters, the caller's jurisdiction, and keyset pagination by (received_at, id)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import graphene
from sqlalchemy import Table, and_, func, or_, select

from gateway.api.gql import enums, errors
from gateway.api.gql.context import RequestContext, context_of
from gateway.api.gql.loaders import COMPLAINT_SELECT
from gateway.api.gql.scalars import DateTime
from gateway.complaints.models import Complaint
from gateway.complaints.status import status_condition
from gateway.core.cursor import decode_cursor, encode_cursor
from gateway.units.jurisdiction import Jurisdiction

MAX_FIRST = 500
OVERDUE_STEP = 100  # records read per step of the walk that checks overdue-ness record by record
OVERDUE_SCAN = 20_000
_COMPLAINTS: Table = Complaint.__table__  # type: ignore[assignment]
_USCC = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{18}$")


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
    # Overdue-ness depends on now and the working-day calendar, not on a column: checked record by record
    # while walking the list in order, over at most OVERDUE_SCAN records.
    overdue: bool | None = None

    @classmethod
    def for_caller(cls, ctx: RequestContext) -> ComplaintQuery:
        return cls(ctx, [ctx.complaint_filter()])

    @classmethod
    def for_enterprise(cls, ctx: RequestContext, uscc: str) -> ComplaintQuery:
        return cls(ctx, [ctx.complaint_filter(), _COMPLAINTS.c.respondent_uscc == uscc])

    async def apply(self, flt: dict[str, Any] | None) -> ComplaintQuery:
        if not flt:
            return self
        c = _COMPLAINTS.c
        conds = self.conditions
        for name, column in (("kind", c.kind), ("channel", c.channel), ("urgency", c.urgency),
                             ("category", c.category), ("hotline", c.hotline)):
            values = flt.get(name)
            if values is not None:
                conds.append(column.in_([str(_value(v)) for v in values]))
        if flt.get("hotline"):
            bad = [h for h in flt["hotline"] if h not in {"12315", "12365", "12331", "12358", "12330"}]
            if bad:
                raise errors.bad_input(f"filter.hotline: unknown number(s) {', '.join(bad)}", argument="filter")
        if flt.get("unit") is not None:
            unit = await self.ctx.loaders.unit.load(flt["unit"])
            if unit is None:
                raise errors.bad_input(f"filter.unit: unknown unit code {flt['unit']}", argument="filter")
            # A unit outside the caller's subtree matches nothing visible: the jurisdiction condition stays.
            conds.append(Jurisdiction(unit.code, unit.level).condition(Complaint.ancestor_columns()))
        if flt.get("respondent_uscc") is not None:
            if not _USCC.match(flt["respondent_uscc"]):
                raise errors.bad_input("filter.respondentUscc: not an 18-character USCC", argument="filter")
            conds.append(c.respondent_uscc == flt["respondent_uscc"])
        if flt.get("received_from") is not None:
            conds.append(c.received_at >= _aware(flt["received_from"], "receivedFrom"))
        if flt.get("received_to") is not None:
            conds.append(c.received_at < _aware(flt["received_to"], "receivedTo"))
        if flt.get("status"):
            conds.append(or_(*(status_condition(str(_value(s))) for s in flt["status"])))
        if flt.get("overdue") is not None:
            self.overdue = bool(flt["overdue"])
        return self

    async def _slice(self, after: str | None, limit: int) -> list[Any]:
        c = _COMPLAINTS.c
        stmt = COMPLAINT_SELECT.where(*self.conditions)
        if after:
            at, rid = _position(after)
            stmt = stmt.where(or_(c.received_at < at, and_(c.received_at == at, c.id < rid)))
        return await self.ctx.loaders._rows(stmt.order_by(c.received_at.desc(), c.id.desc()).limit(limit))

    async def _overdue_rows(self, after: str | None, want: int) -> list[Any]:
        from gateway.reports.deadlines import is_overdue

        now = datetime.now(UTC)
        out: list[Any] = []
        scanned = 0
        while len(out) < want:
            rows = await self._slice(after, OVERDUE_STEP)
            if not rows:
                break
            scanned += len(rows)
            if scanned > OVERDUE_SCAN:
                raise errors.bad_input(
                    f"filter.overdue looks at most {OVERDUE_SCAN} records: narrow the filter (unit, received range)",
                    argument="filter",
                )
            events = await self.ctx.loaders.events.load_many([r.id for r in rows])
            out += [r for r, ev in zip(rows, events, strict=True)
                    if is_overdue(r, ev or [], self.ctx.settings, now) == self.overdue]
            after = row_cursor(rows[-1])
        return out[:want]

    async def page(self, first: int, after: str | None) -> Page:
        check_first(first)
        if not first:
            rows: list[Any] = []
        elif self.overdue is None:
            rows = await self._slice(after, first + 1)
        else:
            rows = await self._overdue_rows(after, first + 1)
        self.ctx.loaders.remember(rows[:first])
        return Page(rows[:first], len(rows) > first, self)

    async def count(self) -> int:
        if self.overdue is not None:
            return len(await self._overdue_rows(None, OVERDUE_SCAN))
        rows = await self.ctx.loaders._rows(select(func.count()).select_from(_COMPLAINTS).where(*self.conditions))
        return int(rows[0][0])

    async def ids(self, limit: int) -> list[str]:
        c = _COMPLAINTS.c
        stmt = select(c.id).where(*self.conditions).order_by(c.received_at.desc(), c.id.desc()).limit(limit)
        return [r[0] for r in await self.ctx.loaders._rows(stmt)]


def _value(v: Any) -> Any:
    return getattr(v, "value", v)


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise errors.bad_input(f"filter.{name}: give an offset, e.g. 2024-01-01T00:00:00+08:00", argument="filter")
    return value


async def resolve_complaints(info: graphene.ResolveInfo, flt: dict[str, Any] | None, first: int,
                             after: str | None) -> Page:
    ctx = context_of(info)
    check_first(first)
    query = await ComplaintQuery.for_caller(ctx).apply(flt)
    return await query.page(first, after)
