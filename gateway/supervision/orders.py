"""Supervision orders (督办单, supervision.md): issue, respond, list, and their states.

- `issue_order`: role `supervisor`; 1–100 records, each visible to the caller (else NOT_FOUND) and handled
  strictly below the caller's unit (else FORBIDDEN); nothing is written unless all pass. The due date is
  the `respond_within`-th working day after the issuing instant's Asia/Shanghai date (the one calendar).
  The same idempotency key from the same unit returns the first order (a unique key, so two racing
  requests still make one order).
- `respond_order`: role `operator`; the caller's unit must be the handling unit of one of the order's
  records, or an ancestor of it, strictly below the issuing unit. Every response is kept; the first one is
  copied onto the order, since it alone decides timeliness.
- both announce themselves on the live feed in the same transaction (`gateway.core.feed`):
  SUPERVISION_ISSUED under each handling unit with its own records, SUPERVISION_RESPONDED under the
  responding unit with the order's records in its subtree.
- states at an instant: RESPONDED_ON_TIME / RESPONDED_LATE (first response's date on or before the due
  date, or after), OVERDUE (no response, due date before the instant's date), OPEN. `state_condition` is
  the same rule in SQL, used by the lists and by the KPI report's `supervision` block.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import and_, case, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from gateway.complaints.models import Complaint
from gateway.core.auth import Principal
from gateway.core.bulk import insert_ignoring_duplicates
from gateway.core.cursor import decode_cursor, encode_cursor
from gateway.core.feed import Alert, publish_alerts
from gateway.core.time import shanghai_date
from gateway.supervision.access import (
    BAD_USER_INPUT,
    FORBIDDEN,
    NOT_FOUND,
    ORDER_READ_ROLES,
    SupervisionError,
    caller_and_unit,
    caller_unit,
    check_first,
    require_any,
    subtree,
    unit_rows,
    within,
)
from gateway.supervision.models import SupervisionOrder, SupervisionOrderRecord, SupervisionResponse
from gateway.units.models import OrgUnit
from kpi.calendar import CalendarError, WorkCalendar

MAX_RECORDS = 100
MAX_NOTE = 500
MAX_RESPOND_WITHIN = 30
DEFAULT_RESPOND_WITHIN = 3
MAX_KEY = 200

OPEN, RESPONDED_ON_TIME, RESPONDED_LATE, OVERDUE = "OPEN", "RESPONDED_ON_TIME", "RESPONDED_LATE", "OVERDUE"
STATES = (OPEN, RESPONDED_ON_TIME, RESPONDED_LATE, OVERDUE)


@dataclass(frozen=True, slots=True)
class Response:
    unit: str
    sub: str
    at: datetime
    note: str


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    issued_by: str  # unit code
    issued_by_sub: str
    issued_at: datetime
    note: str
    respond_within: int
    due_date: date
    complaint_ids: tuple[str, ...]  # every record of the order, in id order (callers filter what they show)
    responses: tuple[Response, ...] = field(default=())  # in order of arrival
    first_response_at: datetime | None = None
    first_response_on_time: bool | None = None

    def state_at(self, instant: datetime) -> str:
        """The order's state at `instant` (supervision.md)."""
        if self.first_response_at is not None and self.first_response_at <= instant:
            return RESPONDED_ON_TIME if self.first_response_on_time else RESPONDED_LATE
        return OVERDUE if self.due_date < shanghai_date(instant) else OPEN


def state_condition(state: str, instant: datetime) -> ColumnElement[bool]:
    """SQL over `supervision_orders`: the order is in `state` at `instant` (the rule of `Order.state_at`)."""
    o = SupervisionOrder
    responded = and_(o.first_response_at.is_not(None), o.first_response_at <= instant)
    if state == RESPONDED_ON_TIME:
        return and_(responded, o.first_response_on_time.is_(True))
    if state == RESPONDED_LATE:
        return and_(responded, o.first_response_on_time.is_(False))
    unanswered = or_(o.first_response_at.is_(None), o.first_response_at > instant)
    if state == OVERDUE:
        return and_(unanswered, o.due_day < shanghai_date(instant))
    return and_(unanswered, o.due_day >= shanghai_date(instant))


def state_case(instant: datetime) -> Any:
    """SQL over `supervision_orders`: the order's state at `instant`, as one of STATES."""
    return case(*((state_condition(s, instant), s) for s in (RESPONDED_ON_TIME, RESPONDED_LATE, OVERDUE)),
                else_=OPEN)


# ------------------------------------------------------------------------------------------------ reading


async def load_orders(session: AsyncSession, ids: Sequence[str]) -> dict[str, Order]:
    """Orders by id with their records and responses: three queries whatever the number of orders."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    o, r, s = SupervisionOrder, SupervisionOrderRecord, SupervisionResponse
    records: dict[str, list[str]] = defaultdict(list)
    for oid, cid in await session.execute(
        select(r.order_id, r.complaint_id).where(r.order_id.in_(wanted)).order_by(r.order_id, r.complaint_id)
    ):
        records[oid].append(cid)
    responses: dict[str, list[Response]] = defaultdict(list)
    for row in await session.execute(
        select(s.order_id, s.unit, s.sub, s.at, s.note).where(s.order_id.in_(wanted)).order_by(s.order_id, s.id)
    ):
        responses[row.order_id].append(Response(row.unit, row.sub, row.at, row.note))
    out = {}
    for order in (await session.execute(select(o).where(o.id.in_(wanted)))).scalars():
        out[order.id] = Order(
            order.id, order.issued_by, order.issued_by_sub, order.issued_at, order.note, order.respond_within,
            order.due_day, tuple(records[order.id]), tuple(responses[order.id]), order.first_response_at,
            order.first_response_on_time,
        )
    return out


async def orders_of_complaints(session: AsyncSession, complaint_ids: Sequence[str]) -> dict[str, list[Order]]:
    """`Complaint.supervisionOrders`: the orders on each record, newest first."""
    r = SupervisionOrderRecord
    pairs = (await session.execute(
        select(r.complaint_id, r.order_id).where(r.complaint_id.in_(list(complaint_ids)))
    )).all()
    orders = await load_orders(session, [oid for _, oid in pairs])
    out: dict[str, list[Order]] = defaultdict(list)
    for cid, oid in pairs:
        out[cid].append(orders[oid])
    for group in out.values():
        group.sort(key=lambda order: (order.issued_at, order.id), reverse=True)
    return out


def _decode(cursor: str) -> tuple[datetime, str]:
    try:
        return decode_cursor(cursor)
    except ValueError:
        raise SupervisionError("after: not a cursor of this list", BAD_USER_INPUT, "after") from None


@dataclass
class OrderPage:
    orders: list[Order]
    has_next: bool
    count_query: Any  # every matching order, run only when totalCount is asked for

    def cursor(self, order: Order) -> str:
        return encode_cursor(order.issued_at, order.id)

    async def total_count(self, session: AsyncSession) -> int:
        return int((await session.execute(self.count_query)).scalar_one())


async def list_orders(
    session: AsyncSession, principal: Principal, unit: str, state: str | None, first: int | None,
    after: str | None, now: datetime | None = None,
) -> OrderPage:
    """`supervisionOrders`: orders issued by a unit in `unit`'s subtree or touching a record in it, newest
    first (issued_at, then id, descending), optionally in one state at now.

    Roles supervisor, operator or evaluator; `unit` must be the caller's or below it (FORBIDDEN)."""
    require_any(principal, ORDER_READ_ROLES)
    size = check_first(first)
    if state is not None and state not in STATES:
        raise SupervisionError(f"state must be one of {', '.join(STATES)}", BAD_USER_INPUT, "state")
    _, top = await caller_and_unit(session, principal, unit)
    o, r = SupervisionOrder, SupervisionOrderRecord
    issuers = select(OrgUnit.code).where(subtree(top).condition(OrgUnit.ancestor_columns()))
    touching = (
        select(r.order_id).join(Complaint, Complaint.id == r.complaint_id)
        .where(subtree(top).condition(Complaint.ancestor_columns()))
    )
    conditions: list[Any] = [or_(o.issued_by.in_(issuers), o.id.in_(touching))]
    if state is not None:
        conditions.append(state_condition(state, now or datetime.now(UTC)))
    count_query = select(func.count()).select_from(o).where(*conditions)
    if after:
        at, oid = _decode(after)
        conditions.append(or_(o.issued_at < at, and_(o.issued_at == at, o.id < oid)))
    ids = list((await session.execute(
        select(o.id).where(*conditions).order_by(o.issued_at.desc(), o.id.desc()).limit(size + 1)
    )).scalars()) if size else []
    found = await load_orders(session, ids[:size])
    return OrderPage([found[i] for i in ids[:size]], len(ids) > size, count_query)


# ------------------------------------------------------------------------------------------------ writing


def _check_note(note: str | None) -> str:
    if note is None or not note.strip() or len(note) > MAX_NOTE:
        raise SupervisionError(f"note: 1 to {MAX_NOTE} characters, not blank", BAD_USER_INPUT, "note")
    return note


async def issue_order(
    session: AsyncSession, principal: Principal, complaint_ids: Sequence[str], note: str,
    respond_within: int | None, idempotency_key: str | None, calendar: WorkCalendar, now: datetime | None = None,
) -> tuple[Order, bool]:
    """`issueSupervision`, in the caller's transaction: the order, and whether it was issued now (False when
    `idempotency_key` returned an earlier order of the caller's unit).

    `respond_within` null means 3. Errors (SupervisionError, nothing written): FORBIDDEN without the
    supervisor role or for a record handled by the caller's own unit; NOT_FOUND for records that do not
    exist or lie outside the caller's jurisdiction (listed); BAD_USER_INPUT for 0 or more than 100 ids, a
    note that is blank or over 500 characters, respond_within outside 1–30, a key over 200 characters."""
    if not principal.has("supervisor"):
        raise SupervisionError("issuing a supervision order needs the role 'supervisor'", FORBIDDEN)
    ids = list(dict.fromkeys(complaint_ids))
    if not 1 <= len(ids) <= MAX_RECORDS:
        raise SupervisionError(f"complaintIds: give 1 to {MAX_RECORDS} ids", BAD_USER_INPUT, "complaintIds")
    note = _check_note(note)
    within_days = DEFAULT_RESPOND_WITHIN if respond_within is None else respond_within
    if not 1 <= within_days <= MAX_RESPOND_WITHIN:
        raise SupervisionError(f"respondWithin: 1 to {MAX_RESPOND_WITHIN} working days, got {within_days}",
                               BAD_USER_INPUT, "respondWithin")
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= MAX_KEY:
        raise SupervisionError(f"idempotencyKey: 1 to {MAX_KEY} characters", BAD_USER_INPUT, "idempotencyKey")
    caller = await caller_unit(session, principal)
    o = SupervisionOrder
    if idempotency_key is not None:
        earlier = await _by_key(session, caller.code, idempotency_key)
        if earlier is not None:
            return earlier, False

    rows = {r.id: r for r in await session.execute(
        select(Complaint.id, Complaint.handling_unit, subtree(caller).condition(Complaint.ancestor_columns())
               .label("visible"))
        .where(Complaint.id.in_(ids))
    )}
    missing = [cid for cid in ids if cid not in rows or not rows[cid].visible]
    if missing:
        raise SupervisionError(f"no complaint {', '.join(missing)}", NOT_FOUND, "complaintIds")
    own = [cid for cid in ids if rows[cid].handling_unit == caller.code]
    if own:
        raise SupervisionError(
            f"complaint {', '.join(own)} is handled by your own unit: a unit supervises only units below it",
            FORBIDDEN, "complaintIds",
        )
    issued_at = now or datetime.now(UTC)
    try:
        due = calendar.add_workdays(shanghai_date(issued_at), within_days)
    except CalendarError as exc:
        raise SupervisionError(f"respondWithin: {exc}", BAD_USER_INPUT, "respondWithin") from None
    order_id = str(uuid.uuid4())
    await session.execute(insert_ignoring_duplicates(session, o).values(
        id=order_id, issued_by=caller.code, issued_by_sub=principal.sub, issued_at=issued_at, note=note,
        respond_within=within_days, due_day=due, idempotency_key=idempotency_key,
    ))
    if idempotency_key is not None:
        first = await _by_key(session, caller.code, idempotency_key)
        if first is not None and first.id != order_id:  # a concurrent request with the key won
            return first, False
    await session.execute(
        insert(SupervisionOrderRecord), [{"order_id": order_id, "complaint_id": cid} for cid in ids]
    )
    order = Order(order_id, caller.code, principal.sub, issued_at, note, within_days, due, tuple(sorted(ids)))
    by_unit: dict[str, list[str]] = defaultdict(list)
    for cid in sorted(ids):
        by_unit[rows[cid].handling_unit].append(cid)
    # The live feed: each handling unit's subtree (and every unit above it) hears of its own records only.
    await publish_alerts(session, [
        Alert("SUPERVISION_ISSUED", unit, cids, _alert_detail(order, OPEN), issued_at)
        for unit, cids in sorted(by_unit.items())
    ])
    return order, True


def _alert_detail(order: Order, state: str) -> dict[str, Any]:
    return {"orderId": order.id, "issuedBy": order.issued_by, "dueDate": order.due_date.isoformat(),
            "note": order.note, "state": state}


async def _by_key(session: AsyncSession, unit: str, key: str) -> Order | None:
    o = SupervisionOrder
    oid = (await session.execute(
        select(o.id).where(o.issued_by == unit, o.idempotency_key == key)
    )).scalar_one_or_none()
    return None if oid is None else (await load_orders(session, [oid]))[oid]


async def respond_order(
    session: AsyncSession, principal: Principal, order_id: str, note: str, now: datetime | None = None,
) -> Order:
    """`respondSupervision`, in the caller's transaction: the order with the response added.

    Errors (nothing written): FORBIDDEN without the operator role, or when the caller's unit sees a record
    of the order but is not strictly below the issuing unit; NOT_FOUND when the order does not exist or
    none of its records is in the caller's jurisdiction; BAD_USER_INPUT for a blank note or one over 500
    characters."""
    if not principal.has("operator"):
        raise SupervisionError("responding to a supervision order needs the role 'operator'", FORBIDDEN)
    note = _check_note(note)
    caller = await caller_unit(session, principal)
    order = (await load_orders(session, [order_id])).get(order_id)
    if order is None:
        raise SupervisionError(f"no supervision order {order_id}", NOT_FOUND, "orderId")
    seen = (await session.execute(
        select(func.count()).select_from(Complaint)
        .where(Complaint.id.in_(order.complaint_ids), subtree(caller).condition(Complaint.ancestor_columns()))
    )).scalar_one()
    if not seen:
        raise SupervisionError(f"no supervision order {order_id}", NOT_FOUND, "orderId")
    issuer = (await unit_rows(session, (order.issued_by,)))[order.issued_by]
    if not (caller.level > issuer.level and within(caller, issuer)):
        raise SupervisionError(
            "only the handling unit of one of the order's records, or a unit above it and below the issuing "
            "unit, may respond", FORBIDDEN, "orderId",
        )
    at = now or datetime.now(UTC)
    s, o = SupervisionResponse, SupervisionOrder
    await session.execute(insert(s).values(order_id=order.id, unit=caller.code, sub=principal.sub, at=at, note=note))
    # The first response decides timeliness; a concurrent first one either sets these or finds them set.
    await session.execute(
        update(o).where(o.id == order.id, o.first_response_at.is_(None))
        .values(first_response_at=at, first_response_on_time=shanghai_date(at) <= order.due_date)
        .execution_options(synchronize_session=False)
    )
    answered = (await load_orders(session, [order.id]))[order.id]
    mine = (await session.execute(
        select(Complaint.id).where(Complaint.id.in_(order.complaint_ids),
                                   subtree(caller).condition(Complaint.ancestor_columns())).order_by(Complaint.id)
    )).scalars()
    # The live feed, under the responding unit: the issuer above hears it, a sibling does not.
    await publish_alerts(session, [Alert("SUPERVISION_RESPONDED", caller.code, list(mine),
                                         _alert_detail(answered, answered.state_at(at)) | {"respondedBy": caller.code},
                                         at)])
    return answered


def response_visible(caller: Any, responder: Any) -> bool:
    """Whether a caller (unit row) may see a response by `responder` (unit row): responses from its own
    subtree and from its ancestors (who answered on its behalf), not a sibling's."""
    return responder is not None and (within(responder, caller) or within(caller, responder))

