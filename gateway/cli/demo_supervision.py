"""The demo's supervision history: a few supervision orders (督办单) on the province's red and yellow
deadlines, answered on time, late, or not at all, so that the lights, the orders and the report's
`supervision` block have something to show on the first start.

Orders carry fixed idempotency keys, so a second start of the demo finds them instead of adding more.
The instants are set in the past (issued a fortnight ago, answered since) to make the states differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import select

from gateway.complaints.models import Complaint
from gateway.core.auth import Principal
from gateway.core.db import make_engine, make_sessionmaker, transaction
from gateway.core.settings import Settings
from gateway.reports.facts import kpi_config
from gateway.supervision.lights import deadline_lights, deadline_watch
from gateway.supervision.orders import Order, issue_order, respond_order
from kpi.obligations import SHANGHAI

PROVINCE = "510000"
SUPERVISOR = Principal("supervisor-sichuan", PROVINCE, frozenset({"supervisor"}))


async def seed_supervision(settings: Settings) -> dict[str, Any]:
    """Issue (once) the demo's orders; returns the province's lights and the orders' states for the banner."""
    config = kpi_config(settings.holidays_file, settings.policy_file)
    engine = make_engine(settings.database_url)
    sm = make_sessionmaker(engine)
    now = datetime.now(UTC)
    try:
        async with sm() as session:
            red = (await deadline_watch(session, SUPERVISOR, PROVINCE, "RED", None, now, 4, None, config,
                                        settings.yellow_days)).nodes
            yellow = (await deadline_watch(session, SUPERVISOR, PROVINCE, "YELLOW", None, now, 2, None, config,
                                           settings.yellow_days)).nodes
            handlers = dict((await session.execute(
                select(Complaint.id, Complaint.handling_unit)
                .where(Complaint.id.in_([n.complaint_id for n in (*red, *yellow)]))
            )).tuples().all())
        plans = [  # (key, records, issued days ago, answered: on time, late or not at all)
            ("demo-1", [n.complaint_id for n in red[:2]], 20, "on time"),
            ("demo-2", [n.complaint_id for n in red[2:3]], 20, "late"),
            ("demo-3", [n.complaint_id for n in red[3:4]], 20, None),  # overdue
            ("demo-4", [n.complaint_id for n in yellow], 0, None),  # just issued: open
        ]
        orders: list[Order] = []
        for key, ids, ago, answered in plans:
            if not ids:
                continue
            issued_at = now - timedelta(days=ago)
            async with transaction(sm) as session:
                order, created = await issue_order(
                    session, SUPERVISOR, ids, "请于期限内办结并反馈办理情况 (demo)", 3, key, config.calendar, issued_at
                )
            if created and answered is not None:
                # on time: an hour later; late: the morning two days after the due date
                at = issued_at + timedelta(hours=1) if answered == "on time" else min(
                    now, datetime.combine(order.due_date + timedelta(days=2), time(10), SHANGHAI))
                order = await _answer(sm, order, handlers[ids[0]], at)
            orders.append(order)
        async with sm() as session:
            lights = await deadline_lights(session, SUPERVISOR, PROVINCE, None, now, config, settings.yellow_days)
    finally:
        await engine.dispose()
    total = lights[-1]
    return {
        "lights": (total.red, total.yellow, total.green),
        "orders": [(o.id, len(o.complaint_ids), o.due_date.isoformat(), o.state_at(now)) for o in orders],
    }


async def _answer(sm: Any, order: Order, unit: str, at: datetime) -> Order:
    operator = Principal("operator-demo", unit, frozenset({"operator"}))
    async with transaction(sm) as session:
        return await respond_order(session, operator, order.id, "已联系经营者并督促整改，结果已告知投诉人 (demo)", at)


def banner(summary: dict[str, Any]) -> Sequence[str]:
    """Lines for the demo's welcome text."""
    red, yellow, green = summary["lights"]
    lines = [f"  Deadline lights of {PROVINCE}: {red} red, {yellow} yellow, {green} green "
             f"(GATEWAY_YELLOW_DAYS working days or fewer left is yellow)",
             "  Supervision orders (督办单) of the demo:"]
    lines += [f"    {oid}  {n} record(s), due {due}, {state}" for oid, n, due, state in summary["orders"]]
    return lines
