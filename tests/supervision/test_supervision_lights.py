"""Deadline lights (supervision.md) in the database, on SQLite and PostgreSQL.

Hand-computed around National Day 2024 (State Council notice: 10-01..10-07 off, Sunday 09-29 and Saturday
10-12 working days): a deadline turns yellow across the holiday and red after an adjusted Saturday. A
property test compares the lights with a record-by-record reference (days counted one by one) and with
the KPI report's OVERDUE counts at the same `as_of`.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from connectors.simulators.data import generate_records
from gateway.core.auth import Principal
from gateway.core.db import transaction
from gateway.ingest.store import ingest_raw
from gateway.reports.build import build_report
from gateway.reports.facts import kpi_config
from gateway.supervision.access import SupervisionError
from gateway.supervision.lights import deadline_lights, deadline_watch
from tests.conftest import Database
from tests.factories import UNITS_CSV, event, load_units, record
from tests.kpi_reference import Ev, Rec, day, parse_units, record_counts

CONFIG = kpi_config()
SUPERVISOR = Principal("sup", "510000", frozenset({"supervisor"}))
NATIONAL = Principal("nat", "100000", frozenset({"supervisor"}))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text + ":00+08:00")


def complaint(rid: str, unit: str, received: str, *events: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return record(rid, handling_unit=unit, received_at=at(received).isoformat(), events=list(events), **extra)


async def ingest(db: Database, raws: list[dict[str, Any]]) -> None:
    async with transaction(db.sessionmaker) as session:
        result = await ingest_raw(session, raws)
    assert not result.rejected, result.rejected


async def lights(db: Database, unit: str, as_of: datetime, level: int | None = None, yellow: int = 2,
                 who: Principal = SUPERVISOR) -> dict[str, tuple[int, int, int]]:
    async with db.sessionmaker() as session:
        rows = await deadline_lights(session, who, unit, level, as_of, CONFIG, yellow)
    return {r.unit.code: (r.red, r.yellow, r.green) for r in rows}


async def watch(db: Database, unit: str, as_of: datetime, yellow: int = 2, **kw: Any) -> Any:
    kw = dict(kw)
    async with db.sessionmaker() as session:
        page = await deadline_watch(session, kw.pop("who", SUPERVISOR), unit, kw.pop("light", None),
                                    kw.pop("code", None), as_of, kw.pop("first", 50), kw.pop("after", None),
                                    CONFIG, yellow)
        return page, await page.total_count(session)


@pytest.fixture
async def national_day(db: Database) -> Database:
    await load_units(db.sessionmaker)
    await ingest(db, [
        # Fri 09-27 + 7 working days: 09-29 (Sun, worked), 09-30, 10-08, 10-09, 10-10, 10-11, 10-12 (Sat, worked)
        complaint("SAT", "510802001", "2024-09-27T10:00"),
        # Tue 09-24 + 7: 09-25, 09-26, 09-27, 09-29, 09-30, 10-08, 10-09
        complaint("HOL", "510811001", "2024-09-24T10:00"),
        # accepted the next morning, so only C_CONCLUDE is open: 45 working days after 09-25, far away
        complaint("ACC", "510104001", "2024-09-24T10:00",
                  event("ACC-1", "ACCEPTED", at("2024-09-25T08:00").isoformat())),
    ])
    return db


@pytest.mark.parametrize(("as_of", "sat", "hol"), [
    # (as_of, (light, days left) of SAT due Sat 10-12, of HOL due Wed 10-09)
    ("2024-09-27T18:00", ("GREEN", 7), ("GREEN", 4)),
    ("2024-09-29T10:00", ("GREEN", 6), ("GREEN", 3)),   # a Sunday worked: 09-30, 10-08, 10-09 left for HOL
    ("2024-09-30T10:00", ("GREEN", 5), ("YELLOW", 2)),  # yellow nine calendar days early: the holiday is off
    ("2024-10-04T10:00", ("GREEN", 5), ("YELLOW", 2)),  # in the holiday nothing counts down
    ("2024-10-08T10:00", ("GREEN", 4), ("YELLOW", 1)),
    ("2024-10-09T23:59", ("GREEN", 3), ("YELLOW", 0)),  # on the due date: 0 days left, still yellow
    ("2024-10-10T00:00", ("YELLOW", 2), ("RED", 0)),    # the day after: overdue
    ("2024-10-11T10:00", ("YELLOW", 1), ("RED", 0)),    # the day before the adjusted Saturday
    ("2024-10-12T10:00", ("YELLOW", 0), ("RED", 0)),    # due on a Saturday worked
    ("2024-10-13T10:00", ("RED", 0), ("RED", 0)),
])
async def test_lights_across_national_day(national_day: Database, as_of: str, sat: tuple[str, int],
                                          hol: tuple[str, int]) -> None:
    when = at(as_of)
    page, total = await watch(national_day, "510000", when)
    nodes = {n.complaint_id: n for n in page.nodes if n.code == "C_ACCEPT"}
    assert (nodes["SAT"].light, nodes["SAT"].days_left) == sat
    assert (nodes["HOL"].light, nodes["HOL"].days_left) == hol
    assert nodes["SAT"].due_date == date(2024, 10, 12) and nodes["HOL"].due_date == date(2024, 10, 9)
    conclude = next(n for n in page.nodes if n.complaint_id == "ACC")
    assert conclude.code == "C_CONCLUDE" and conclude.light == "GREEN"  # C_ACCEPT met, not listed
    assert total == 3

    counts = await lights(national_day, "510000", when)
    colour = {"RED": 0, "YELLOW": 1, "GREEN": 2}
    guangyuan = [0, 0, 0]
    for light in (sat[0], hol[0]):
        guangyuan[colour[light]] += 1
    assert counts["510800"] == tuple(guangyuan)
    assert counts["510100"] == (0, 0, 1)
    assert list(counts)[-1] == "510000"  # the whole subtree last
    assert counts["510000"] == tuple(g + c for g, c in zip(guangyuan, (0, 0, 1), strict=True))


async def test_yellow_days_setting(national_day: Database) -> None:
    # GATEWAY_YELLOW_DAYS=0: yellow only on the due date itself
    page, _ = await watch(national_day, "510800", at("2024-10-11T10:00"), yellow=0)
    assert {n.complaint_id: n.light for n in page.nodes} == {"HOL": "RED", "SAT": "GREEN"}
    page, _ = await watch(national_day, "510800", at("2024-10-12T10:00"), yellow=0)
    assert {n.complaint_id: n.light for n in page.nodes} == {"HOL": "RED", "SAT": "YELLOW"}
    # 5: SAT is yellow from 09-30 (5 working days left), green the day before (09-29: 6 left)
    page, _ = await watch(national_day, "510800", at("2024-09-29T10:00"), yellow=5)
    assert {n.complaint_id: n.light for n in page.nodes} == {"HOL": "YELLOW", "SAT": "GREEN"}
    page, _ = await watch(national_day, "510800", at("2024-09-30T10:00"), yellow=5)
    assert {n.complaint_id: n.light for n in page.nodes} == {"HOL": "YELLOW", "SAT": "YELLOW"}


async def test_red_is_the_reports_overdue(national_day: Database) -> None:
    when = at("2024-10-10T09:00")
    assert (await lights(national_day, "510000", when))["510000"] == (1, 1, 1)
    async with national_day.sessionmaker() as session:
        doc = await build_report(session, unit="510000", date_from=date(2024, 9, 1), date_to=date(2024, 9, 30),
                                 as_of=when, config=CONFIG)
    assert doc["total"]["overdue"] == 1
    # before it was received, a record has no light
    assert (await lights(national_day, "510000", at("2024-09-25T09:00")))["510000"] == (0, 0, 2)


async def test_watch_order_filters_and_pages(national_day: Database) -> None:
    await ingest(national_day, [
        # same due date as HOL (10-09), ids sorting before and after it; a REPORT with R_DECIDE due later
        complaint("HOA", "510802002", "2024-09-24T15:00"),
        complaint("HOZ", "510802", "2024-09-24T08:00"),
        complaint("REP", "510802001", "2024-09-24T10:00", kind="REPORT"),
    ])
    when = at("2024-10-08T10:00")
    page, total = await watch(national_day, "510000", when)
    order = [(n.due_date.isoformat(), n.complaint_id, n.code) for n in page.nodes]
    assert order == sorted(order) and total == 6
    assert [n.complaint_id for n in page.nodes][:3] == ["HOA", "HOL", "HOZ"]
    seen: list[tuple[str, str]] = []
    after = None
    while True:
        part, _ = await watch(national_day, "510000", when, first=2, after=after)
        seen += [(n.complaint_id, n.code) for n in part.nodes]
        if not part.has_next:
            break
        after = part.nodes[-1].cursor
    assert seen == [(n.complaint_id, n.code) for n in page.nodes]

    yellow, count = await watch(national_day, "510000", when, light="YELLOW")
    assert {n.complaint_id for n in yellow.nodes} == {"HOA", "HOL", "HOZ"} and count == 3
    decide, count = await watch(national_day, "510000", when, code="R_DECIDE")
    assert [(n.complaint_id, n.due_date) for n in decide.nodes] == [("REP", date(2024, 10, 18))] and count == 1
    county, count = await watch(national_day, "510802", when)
    assert {n.complaint_id for n in county.nodes} == {"SAT", "HOA", "HOZ", "REP"} and count == 4
    none, count = await watch(national_day, "510000", when, first=0)
    assert none.nodes == [] and count == 6


@pytest.mark.parametrize(("kw", "code"), [
    ({"who": Principal("r", "510000", frozenset({"reader", "operator"}))}, "FORBIDDEN"),
    ({"unit": "510100", "who": Principal("e", "510800", frozenset({"evaluator"}))}, "FORBIDDEN"),  # sibling
    ({"unit": "510000", "who": Principal("e", "510800", frozenset({"evaluator"}))}, "FORBIDDEN"),  # superior
    ({"unit": "999999"}, "FORBIDDEN"),  # unknown, answered like a foreign unit
    ({"first": 501}, "BAD_USER_INPUT"),
    ({"after": "not-a-cursor"}, "BAD_USER_INPUT"),
    ({"light": "BLUE"}, "BAD_USER_INPUT"),
    ({"as_of": datetime(2024, 10, 1)}, "BAD_USER_INPUT"),  # no offset
    ({"as_of": datetime.fromisoformat("2199-12-31T10:00:00+08:00")}, "BAD_USER_INPUT"),  # past the calendar
])
async def test_watch_refusals(national_day: Database, kw: dict[str, Any], code: str) -> None:
    kw = dict(kw)  # the parameter is shared by both databases' runs
    with pytest.raises(SupervisionError) as info:
        await watch(national_day, kw.pop("unit", "510000"), kw.pop("as_of", at("2024-10-08T10:00")), **kw)
    assert info.value.code == code


async def test_lights_levels(national_day: Database) -> None:
    when = at("2024-10-10T09:00")
    by_station = await lights(national_day, "510800", when, level=5)
    assert by_station == {"510802001": (0, 1, 0), "510802002": (0, 0, 0), "510811001": (1, 0, 0),
                          "510800": (1, 1, 0)}
    assert await lights(national_day, "510802001", when) == {"510802001": (0, 1, 0)}  # a station: total only
    for bad in (2, 6):
        with pytest.raises(SupervisionError) as info:
            await lights(national_day, "510000", when, level=bad)
        assert info.value.code == "BAD_USER_INPUT"
    evaluator = Principal("e", "510800", frozenset({"evaluator"}))
    assert (await lights(national_day, "510800", when, who=evaluator))["510800"] == (1, 1, 0)


# ------------------------------------------------------------------------------------- property test

def _workdays_after(first: date, last: date) -> int:
    """Working days d with first < d <= last, counted one day at a time."""
    n, d = 0, first + timedelta(days=1)
    while d <= last:
        n += CONFIG.calendar.is_workday(d)
        d += timedelta(days=1)
    return n


def reference(raws: list[dict[str, Any]], unit: str, level: int, as_of: datetime,
              yellow: int) -> tuple[dict[str, list[int]], list[tuple[date, str, str, int, str]]]:
    units = parse_units(UNITS_CSV)
    own = units[unit][1]
    counts = {c: [0, 0, 0] for c, (_, lvl, anc) in units.items() if lvl == level and anc[own - 1] == unit}
    counts[unit] = [0, 0, 0]
    nodes = []
    for raw in raws:
        anc = units[raw["handling_unit"]][2]
        received = datetime.fromisoformat(raw["received_at"])
        if anc[own - 1] != unit or received > as_of:
            continue
        events = sorted((Ev(e["type"], datetime.fromisoformat(e["at"]), e["data"]) for e in raw["events"]),
                        key=lambda e: e.at)
        rec = Rec(raw["id"], raw["kind"], raw["channel"], raw["hotline"], received, raw["handling_unit"],
                  raw["complainant"]["real_name"], 0, events)
        states: list[tuple[str, date, str]] = []
        record_counts(rec, as_of, CONFIG.calendar, CONFIG.policies, set(), [], states)
        for code, due, state in states:
            if state not in ("OVERDUE", "PENDING"):
                continue
            left = _workdays_after(day(as_of), due)
            light = "RED" if state == "OVERDUE" else "YELLOW" if left <= yellow else "GREEN"
            nodes.append((due, raw["id"], code, left, light))
            i = ("RED", "YELLOW", "GREEN").index(light)
            counts[unit][i] += 1
            if anc[level - 1] is not None:
                counts[str(anc[level - 1])][i] += 1
    return counts, sorted(nodes)


async def test_lights_match_a_record_by_record_reference_and_the_report(db: Database) -> None:
    await load_units(db.sessionmaker)
    handling = [c for c, (_, lvl, _) in parse_units(UNITS_CSV).items() if lvl >= 3]
    raws = generate_records(300, handling, seed=7, start=date(2024, 9, 1), days=60, id_prefix="G")
    await ingest(db, raws)
    rnd = random.Random(3)
    # mid-stream (many records still changing after as_of) and after everything (all final views)
    cases = [("2024-09-30T12:00", "510000", 3), ("2024-10-08T00:00", "510000", 5), ("2024-10-21T17:30", "510800", 4),
             ("2024-10-14T09:00", "100000", 2), ("2025-03-01T09:00", "510000", 3), ("2025-03-01T09:00", "100000", 2),
             ("2025-03-01T09:00", "510800", 5)]
    for as_of, unit, level in cases:
        when = at(as_of)
        yellow = rnd.choice([0, 2, 4])
        expected, nodes = reference(raws, unit, level, when, yellow)
        got = await lights(db, unit, when, level=level, yellow=yellow, who=NATIONAL)
        assert got == {k: tuple(v) for k, v in expected.items()}
        page, total = await watch(db, unit, when, yellow=yellow, first=500, who=NATIONAL)
        assert total == len(nodes) and not page.has_next
        assert [(n.due_date, n.complaint_id, n.code, n.days_left, n.light) for n in page.nodes] == nodes
        async with db.sessionmaker() as session:
            doc = await build_report(session, unit=unit, date_from=date(2024, 1, 1), date_to=date(2024, 12, 31),
                                     as_of=when, config=CONFIG)
        assert doc["total"]["overdue"] == expected[unit][0]  # red is the report's OVERDUE
