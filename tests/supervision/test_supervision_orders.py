"""Supervision orders (督办单, supervision.md) in the database, on SQLite and PostgreSQL: issuing with its
jurisdiction and "strictly below" rules, idempotency, working-day due dates, responses and their
timeliness, states at an instant, lists, and the KPI report's `supervision` block.

Hand-computed: an order issued Fri 2024-09-27 with 3 working days to respond is due 10-08 (09-29, a Sunday
worked; 09-30; then 10-08 after the National Day holiday).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.core.auth import Principal
from gateway.core.db import transaction
from gateway.ingest.store import ingest_raw
from gateway.reports.build import build_report
from gateway.reports.facts import KpiConfig, kpi_config
from gateway.supervision.access import SupervisionError
from gateway.supervision.models import SupervisionOrder, SupervisionOrderRecord, SupervisionResponse
from gateway.supervision.orders import Order, issue_order, list_orders, load_orders, respond_order
from gateway.supervision.report import count_orders
from kpi.policies import Policies
from tests.conftest import Database
from tests.factories import load_units, record

CALENDAR = kpi_config().calendar
ISSUED = datetime.fromisoformat("2024-09-27T10:00:00+08:00")

PLACES = {
    "R1": "510802001",  # a station of county 510802, city 510800
    "R2": "510811001",  # a station of the sibling county 510811
    "R3": "510802",  # the county itself
    "R4": "510104001",  # a station of the sibling city 510100
    "R5": "510800",  # the city itself
}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text + ":00+08:00")


def who(unit: str, roles: str = "supervisor", sub: str = "someone") -> Principal:
    return Principal(sub, unit, frozenset(roles.split(",")))


CITY = who("510800")


@pytest.fixture
async def tree(db: Database) -> Database:
    await load_units(db.sessionmaker)
    async with transaction(db.sessionmaker) as session:
        result = await ingest_raw(session, [
            record(rid, handling_unit=unit, received_at="2024-09-20T09:00:00+08:00", events=[])
            for rid, unit in PLACES.items()
        ])
    assert not result.rejected
    return db


async def issue(db: Database, ids: list[str], caller: Principal = CITY, note: str = "请于期限内办结并反馈",
                within: int | None = 3, key: str | None = None, now: datetime = ISSUED) -> tuple[Order, bool]:
    async with transaction(db.sessionmaker) as session:
        return await issue_order(session, caller, ids, note, within, key, CALENDAR, now)


async def respond(db: Database, order_id: str, caller: Principal, when: str, note: str = "已办结") -> Order:
    async with transaction(db.sessionmaker) as session:
        return await respond_order(session, caller, order_id, note, at(when))


async def order_count(db: Database) -> tuple[int, int, int]:
    async with db.sessionmaker() as session:
        return tuple([  # type: ignore[return-value]
            int((await session.execute(select(func.count()).select_from(m))).scalar_one())
            for m in (SupervisionOrder, SupervisionOrderRecord, SupervisionResponse)
        ])


async def state(db: Database, order_id: str, when: str) -> str:
    async with db.sessionmaker() as session:
        return (await load_orders(session, [order_id]))[order_id].state_at(at(when))


async def test_due_date_and_timeliness(tree: Database) -> None:
    a, created = await issue(tree, ["R1", "R2"])
    assert created and a.due_date == date(2024, 10, 8) and a.issued_by == "510800"
    assert a.complaint_ids == ("R1", "R2") and a.respond_within == 3
    b, _ = await issue(tree, ["R1"])
    c, _ = await issue(tree, ["R2"])
    assert (await issue(tree, ["R2"], within=None))[0].due_date == date(2024, 10, 8)  # null: the default 3
    assert (await issue(tree, ["R2"], within=1))[0].due_date == date(2024, 9, 29)  # the Sunday worked
    assert (await issue(tree, ["R2"], within=30))[0].due_date == date(2024, 11, 13)

    # answered on the due date, late in the evening: on time
    answered = await respond(tree, a.id, who("510802001", "operator"), "2024-10-08T23:30")
    assert answered.first_response_on_time is True and answered.state_at(at("2024-10-09T10:00")) == "RESPONDED_ON_TIME"
    # a later response from the other county is kept, and changes nothing
    again = await respond(tree, a.id, who("510811", "operator"), "2024-10-12T10:00", "补充说明")
    assert [(r.unit, r.note) for r in again.responses] == [("510802001", "已办结"), ("510811", "补充说明")]
    assert again.state_at(at("2024-10-12T11:00")) == "RESPONDED_ON_TIME"
    # answered the day after the due date, by the county above the handling station: late
    await respond(tree, b.id, who("510802", "operator"), "2024-10-09T00:00")
    assert await state(tree, b.id, "2024-10-09T08:00") == "RESPONDED_LATE"
    assert await state(tree, b.id, "2024-10-08T23:59") == "OPEN"  # before the response, still open
    # unanswered: open through the due date, overdue from the next day
    assert await state(tree, c.id, "2024-10-08T23:59") == "OPEN"
    assert await state(tree, c.id, "2024-10-09T00:00") == "OVERDUE"


async def test_who_may_respond(tree: Database) -> None:
    order, _ = await issue(tree, ["R2"])  # R2 is handled by 510811001, below the issuing city 510800
    before = await order_count(tree)
    refusals = [
        (who("510802", "operator"), "NOT_FOUND"),  # a sibling county: sees none of the records
        (who("510802001", "operator"), "NOT_FOUND"),  # a station of the sibling county
        (who("510104001", "operator"), "NOT_FOUND"),  # another city's station
        (who("510800", "operator"), "FORBIDDEN"),  # the issuing unit itself: not strictly below it
        (who("510000", "operator"), "FORBIDDEN"),  # above the issuing unit
        (who("510811001", "reader,supervisor"), "FORBIDDEN"),  # no operator role
    ]
    for caller, code in refusals:
        with pytest.raises(SupervisionError) as info:
            await respond(tree, order.id, caller, "2024-09-30T10:00")
        assert info.value.code == code, caller
    for note in ("", "   ", "字" * 501):
        with pytest.raises(SupervisionError) as info:
            await respond(tree, order.id, who("510811001", "operator"), "2024-09-30T10:00", note)
        assert info.value.code == "BAD_USER_INPUT"
    with pytest.raises(SupervisionError) as info:
        await respond(tree, "no-such-order", who("510811001", "operator"), "2024-09-30T10:00")
    assert info.value.code == "NOT_FOUND"
    assert await order_count(tree) == before  # nothing written by any refusal
    # the handling station and the county above it (below the issuer) may
    await respond(tree, order.id, who("510811", "operator"), "2024-09-30T10:00", "字" * 500)
    done = await respond(tree, order.id, who("510811001", "operator"), "2024-10-09T10:00")
    assert [r.unit for r in done.responses] == ["510811", "510811001"]
    assert done.state_at(at("2024-10-10T00:00")) == "RESPONDED_ON_TIME"  # the first response decides


@pytest.mark.parametrize(("caller", "ids", "code"), [
    (CITY, ["R5"], "FORBIDDEN"),  # handled by the city itself: a unit does not supervise itself
    (CITY, ["R1", "R5"], "FORBIDDEN"),  # one of them is enough to refuse the whole order
    (CITY, ["R4"], "NOT_FOUND"),  # another city's record
    (CITY, ["R1", "R4"], "NOT_FOUND"),
    (CITY, ["R1", "NOPE"], "NOT_FOUND"),
    (who("510802"), ["R3"], "FORBIDDEN"),  # the county's own record
    (who("510802"), ["R2"], "NOT_FOUND"),  # the sibling county's
    (who("510802"), ["R5"], "NOT_FOUND"),  # the superior's
    (who("510802001"), ["R1"], "FORBIDDEN"),  # a station has nobody below it
    (who("510800", "operator,evaluator,reader"), ["R1"], "FORBIDDEN"),  # no supervisor role
    (CITY, [], "BAD_USER_INPUT"),
    (CITY, [f"X{i}" for i in range(101)], "BAD_USER_INPUT"),
])
async def test_issue_refusals_write_nothing(tree: Database, caller: Principal, ids: list[str], code: str) -> None:
    with pytest.raises(SupervisionError) as info:
        await issue(tree, ids, caller)
    assert info.value.code == code
    assert await order_count(tree) == (0, 0, 0)


@pytest.mark.parametrize("kw", [
    {"note": ""}, {"note": " \n"}, {"note": "字" * 501}, {"within": 0}, {"within": 31}, {"within": -3},
    {"key": ""}, {"key": "k" * 201},
])
async def test_issue_bad_input(tree: Database, kw: dict[str, Any]) -> None:
    with pytest.raises(SupervisionError) as info:
        await issue(tree, ["R1"], **kw)
    assert info.value.code == "BAD_USER_INPUT" and info.value.argument
    assert await order_count(tree) == (0, 0, 0)


async def test_idempotency_key(tree: Database) -> None:
    first, created = await issue(tree, ["R1"], key="2024-督办-001")
    assert created
    # the same key from the same unit (another person, other records, later): the first order
    again, created = await issue(tree, ["R2"], who("510800", sub="another"), key="2024-督办-001",
                                 now=at("2024-10-09T10:00"))
    assert not created and again.id == first.id and again.complaint_ids == ("R1",)
    assert again.due_date == first.due_date
    assert await order_count(tree) == (1, 1, 0)
    # the same key from another unit is another order
    other, created = await issue(tree, ["R1"], who("510000"), key="2024-督办-001")
    assert created and other.id != first.id
    # without a key, every call issues
    assert (await issue(tree, ["R1"]))[0].id != (await issue(tree, ["R1"]))[0].id
    assert (await order_count(tree))[0] == 4


async def test_lists(tree: Database) -> None:
    a, _ = await issue(tree, ["R1", "R2"], now=at("2024-09-27T10:00"))
    b, _ = await issue(tree, ["R1"], now=at("2024-09-27T11:00"))
    c, _ = await issue(tree, ["R2"], now=at("2024-09-27T12:00"))
    # issued on the Sunday worked: due 10-09, still open on the morning of 10-09
    county, _ = await issue(tree, ["R1"], who("510802"), now=at("2024-09-29T13:00"))
    province, _ = await issue(tree, ["R4"], who("510000"), now=at("2024-09-29T14:00"))
    await respond(tree, a.id, who("510802001", "operator"), "2024-09-30T10:00")

    async def ids(caller: Principal, unit: str, **kw: Any) -> list[str]:
        async with tree.sessionmaker() as session:
            page = await list_orders(session, caller, unit, kw.get("state"), kw.get("first", 50), kw.get("after"),
                                     now=at("2024-10-09T10:00"))
        return [o.id for o in page.orders]

    everything = [province.id, county.id, c.id, b.id, a.id]  # newest first
    assert await ids(who("510000", "evaluator"), "510000") == everything
    assert await ids(CITY, "510800") == [county.id, c.id, b.id, a.id]
    assert await ids(who("510802", "operator"), "510802") == [county.id, b.id, a.id]  # issued by it, or touching it
    assert await ids(who("510811001", "operator"), "510811001") == [c.id, a.id]
    assert await ids(who("510104", "operator"), "510104") == [province.id]
    assert await ids(who("510000", "evaluator"), "510000", state="RESPONDED_ON_TIME") == [a.id]
    assert await ids(who("510000", "evaluator"), "510000", state="OVERDUE") == [c.id, b.id]  # due 10-08
    assert await ids(who("510000", "evaluator"), "510000", state="OPEN") == [province.id, county.id]  # due 10-09
    pages, after = [], None
    while True:
        async with tree.sessionmaker() as session:
            page = await list_orders(session, who("510000", "supervisor"), "510000", None, 2, after)
        pages.append([o.id for o in page.orders])
        if not page.has_next:
            break
        after = page.cursor(page.orders[-1])
    assert [i for p in pages for i in p] == everything and len(pages) == 3

    for caller, unit in [(who("510802", "operator"), "510800"), (who("510802", "operator"), "510811"),
                         (who("510800", "reader,pii"), "510800"), (CITY, "999999")]:
        with pytest.raises(SupervisionError) as info:
            await ids(caller, unit)
        assert info.value.code == "FORBIDDEN"
    with pytest.raises(SupervisionError) as info:
        await ids(CITY, "510800", state="LOST")
    assert info.value.code == "BAD_USER_INPUT"


async def report_block(db: Database, unit: str, level: int, as_of: str) -> dict[str, Any]:
    async with db.sessionmaker() as session:
        doc = await build_report(session, unit=unit, level=level, date_from=date(2024, 9, 1),
                                 date_to=date(2024, 9, 30), as_of=at(as_of), orders=count_orders)
    return {r["unit"]["code"]: r["supervision"] for r in [*doc["rows"], doc["total"]]}


def block(issued: int, on_time: int, late: int, overdue: int, rate: float | None) -> dict[str, Any]:
    return {"issued": issued, "responded_on_time": on_time, "responded_late": late, "overdue": overdue,
            "rate": rate}


async def test_report_block(tree: Database) -> None:
    a, _ = await issue(tree, ["R1", "R2"])  # both counties of the city
    b, _ = await issue(tree, ["R1"])
    c, _ = await issue(tree, ["R2"])
    await issue(tree, ["R4"], who("510000"), now=at("2024-10-20T10:00"))  # issued after the as_of below
    await respond(tree, a.id, who("510802001", "operator"), "2024-10-08T16:00")  # on time
    await respond(tree, b.id, who("510802", "operator"), "2024-10-09T09:00")  # late

    rows = await report_block(tree, "510800", 4, "2024-10-09T12:00")
    # an order on records of two rows counts in each, and once in the total
    assert rows["510802"] == block(2, 1, 1, 0, 0.5)  # a, b
    assert rows["510811"] == block(2, 1, 0, 1, 0.5)  # a, c (unanswered past 10-08)
    assert rows["510800"] == block(3, 1, 1, 1, 1 / 3)

    # states at as_of: before any response all are open; before issuing, nothing
    assert (await report_block(tree, "510800", 4, "2024-10-08T12:00"))["510800"] == block(3, 0, 0, 0, None)
    assert (await report_block(tree, "510800", 4, "2024-09-27T09:59"))["510800"] == block(0, 0, 0, 0, None)
    # at level 5: R1's station, R2's station, the empty station; the province sees every order issued by then
    stations = await report_block(tree, "510800", 5, "2024-10-09T12:00")
    assert stations["510802001"] == block(2, 1, 1, 0, 0.5) and stations["510802002"] == block(0, 0, 0, 0, None)
    province = await report_block(tree, "510000", 3, "2024-10-21T00:00")
    assert province["510100"] == block(1, 0, 0, 0, None) and province["510000"]["issued"] == 4

    # the default scheme's score ignores the block; a scheme may weight supervision_rate
    config = KpiConfig(CALENDAR, Policies.from_json('{"schemes": {"press": {"supervision_rate": 1}}}'))

    async def scores(scheme: str, orders: Any) -> dict[str, Any]:
        async with tree.sessionmaker() as session:
            doc = await build_report(session, unit="510800", level=4, date_from=date(2024, 9, 1),
                                     date_to=date(2024, 9, 30), as_of=at("2024-10-09T12:00"), scheme=scheme,
                                     config=config, orders=orders)
        return {r["unit"]["code"]: r["score"] for r in [*doc["rows"], doc["total"]]}

    assert await scores("default", count_orders) == await scores("default", None)
    assert await scores("press", count_orders) == {"510802": 50.0, "510811": 50.0, "510800": pytest.approx(100 / 3)}
    assert await scores("press", None) == {"510802": None, "510811": None, "510800": None}
