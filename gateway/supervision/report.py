"""The `supervision` block of every KPI report row (supervision.md): the orders issued at or before
`as_of` on the row's records, with their states at `as_of`.

`count_orders` is the `gateway.reports.build.OrderCounter` the API and CLI hand to `build_report`. Two
aggregate queries over distinct (row, order) pairs of the report's own population (the record facts the
report counts, joined to the orders' records): one grouped by the row's unit (an order on records of
several rows counts in each), one for the whole report (where such an order counts once).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.reports.build import OrderCounts, ReportScope
from gateway.reports.models import KpiRecordFact
from gateway.supervision.models import SupervisionOrder, SupervisionOrderRecord
from gateway.supervision.orders import OVERDUE, RESPONDED_LATE, RESPONDED_ON_TIME, state_case


def _per_group(group: Any, scope: ReportScope) -> Any:
    o, r, rf = SupervisionOrder, SupervisionOrderRecord, KpiRecordFact
    pairs = (
        select(group.label("unit"), o.id, state_case(scope.as_of).label("state"))
        .select_from(r)
        .join(rf, rf.complaint_id == r.complaint_id)
        .join(o, o.id == r.order_id)
        .where(scope.population(rf), o.issued_at <= scope.as_of)
        .distinct()
        .subquery()
    )

    def count(state: str) -> Any:
        return func.sum(case((pairs.c.state == state, 1), else_=0))

    return (
        select(pairs.c.unit, func.count().label("issued"), count(RESPONDED_ON_TIME), count(RESPONDED_LATE),
               count(OVERDUE))
        .group_by(pairs.c.unit)
    )


async def count_orders(session: AsyncSession, scope: ReportScope) -> OrderCounts:
    """[issued, responded_on_time, responded_late, overdue] per row unit (None: records of no row) and for
    the whole report, at `scope.as_of`."""
    by_row = {
        unit: [int(n or 0) for n in counts]
        for unit, *counts in await session.execute(_per_group(scope.row_column(KpiRecordFact), scope))
    }
    total = [0, 0, 0, 0]
    for _, *counts in await session.execute(_per_group(literal("total"), scope)):
        total = [int(n or 0) for n in counts]
    return by_row, total
