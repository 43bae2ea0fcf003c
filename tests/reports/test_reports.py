"""KPI reports computed in the database (SQLite, and PostgreSQL when GATEWAY_TEST_DATABASE_URL is set).

The fixture records below are counted by hand; every due date is checked against the holiday notices in
tests/kpi/test_kpi_obligations.py. A property test compares the SQL engine with a record-by-record
computation (tests/kpi_reference.py) on random records.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from gateway.complaints.models import Complainant, Complaint, Event
from gateway.core.db import transaction
from gateway.ingest.store import ingest_raw
from gateway.ingest.units_file import import_units
from gateway.reports.build import ReportError, build_report
from gateway.reports.facts import KpiConfig, kpi_config
from gateway.reports.models import FACT_MODELS, KpiObligationFact
from gateway.units.tree import load_units as load_unit_index
from kpi.calendar import WorkCalendar
from kpi.policies import Policies
from tests.conftest import Database
from tests.factories import UNITS_CSV, event, load_units, record
from tests.kpi_reference import SH, Ev, Rec, reference_report

AS_OF = datetime.fromisoformat("2024-06-30T23:59:59+08:00")
MARCH = (date(2024, 3, 1), date(2024, 3, 31))


def t(text: str) -> str:
    """A Shanghai wall-clock time "YYYY-MM-DDTHH:MM" as an RFC 3339 timestamp."""
    return text + ":00+08:00"


def complaint(rid: str, unit: str, received: str, *events: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return record(rid, handling_unit=unit, received_at=t(received), events=list(events), **extra)


def e(rid: str, n: int, type_: str, at: str, **data: Any) -> dict[str, Any]:
    return event(f"{rid}-{n}", type_, t(at), data)


def march_records() -> list[dict[str, Any]]:
    return [
        # 广元 (510800): A on time throughout, satisfied; B accepted late, never concluded, unreachable;
        # F handled by the county 510802, received on the last evening of March, never answered.
        complaint("A", "510802001", "2024-03-01T09:30",
                  e("A", 1, "ACCEPTED", "2024-03-12T17:00"), e("A", 2, "MEDIATION_SUCCEEDED", "2024-04-01T10:00"),
                  e("A", 3, "REPLIED", "2024-04-02T10:00"), e("A", 4, "CALLBACK", "2024-04-03T10:00",
                                                              satisfaction="SATISFIED")),
        complaint("B", "510811001", "2024-03-01T09:30", e("B", 1, "ACCEPTED", "2024-03-13T09:00"),
                  e("B", 2, "CALLBACK", "2024-04-03T10:00", satisfaction="UNREACHABLE"), recovered_amount=None),
        complaint("F", "510802", "2024-03-31T23:30", recovered_amount=None),
        # 成都 (510100): C a real-name report, extended, filed on time, told late; G received 00:30 on
        # 03-01 in Shanghai (still 02-29 in UTC), handled by the city itself, rejected on time, no reply.
        complaint("C", "510104001", "2024-03-01T09:30",
                  e("C", 1, "EXTENDED", "2024-03-20T10:00", working_days=5),
                  e("C", 2, "CASE_FILED", "2024-03-28T10:00", case_no="N1"), e("C", 3, "REPLIED", "2024-04-08T10:00"),
                  kind="REPORT", recovered_amount=None),
        complaint("G", "510100", "2024-03-01T00:30", e("G", 1, "REJECTED", "2024-03-05T10:00", reason="x"),
                  recovered_amount=None),
        # the province itself: total only
        complaint("D", "510000", "2024-03-05T10:00", kind="INQUIRY", channel="WEB", hotline=None,
                  recovered_amount=None),
        # outside the range
        complaint("E", "510802001", "2024-04-01T09:30"),
        complaint("H", "510802001", "2024-02-29T23:59"),
    ]


async def ingest(db: Database, raws: list[dict[str, Any]]) -> None:
    async with transaction(db.sessionmaker) as session:
        result = await ingest_raw(session, raws)
    assert not result.rejected, result.rejected


async def report(db: Database, unit: str, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("date_from", MARCH[0])
    kwargs.setdefault("date_to", MARCH[1])
    kwargs.setdefault("as_of", AS_OF)
    async with db.sessionmaker() as session:
        return await build_report(session, unit=unit, **kwargs)


@pytest.fixture
async def march(db: Database) -> Database:
    await load_units(db.sessionmaker)
    await ingest(db, march_records())
    return db


def obligations(row: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    return {k: (v["on_time"], v["late"], v["overdue"]) for k, v in row["timeliness_by_obligation"].items()}


async def test_province_by_city(march: Database) -> None:
    doc = await report(march, "510000")
    assert doc["unit"] == {"code": "510000", "name": "四川省市场监督管理局", "level": 2}
    assert (doc["level"], doc["from"], doc["to"], doc["as_of"]) == (3, "2024-03-01", "2024-03-31",
                                                                      "2024-06-30T23:59:59+08:00")
    assert doc["calendar_complete"] is True and doc["policy_versions"] == ["order-20"]
    guangyuan, chengdu = doc["rows"]
    assert guangyuan["unit"]["code"] == "510800" and chengdu["unit"]["code"] == "510100"

    assert guangyuan["received"] == 3 and guangyuan["received_by_kind"]["COMPLAINT"] == 3
    assert obligations(guangyuan) == {"C_ACCEPT": (1, 1, 1), "C_CONCLUDE": (1, 0, 1), "R_DECIDE": (0, 0, 0),
                                      "R_REPLY": (0, 0, 0)}
    assert (guangyuan["on_time"], guangyuan["late"], guangyuan["overdue"]) == (2, 1, 2)
    assert guangyuan["timeliness_rate"] == 0.4
    assert guangyuan["reply_rate"] == 1.0 and guangyuan["callback_rate"] == 1.0
    assert guangyuan["satisfaction_rate"] == 1.0  # B's latest callback is UNREACHABLE: not counted
    assert guangyuan["mediation_success_rate"] == 1.0 and guangyuan["case_filing_rate"] is None
    assert guangyuan["recovered_amount"] == "100.50"
    assert guangyuan["score"] == pytest.approx(76.0) and guangyuan["rank"] == 1

    assert chengdu["received_by_kind"] == {"COMPLAINT": 1, "REPORT": 1, "INQUIRY": 0, "SUGGESTION": 0}
    assert obligations(chengdu) == {"C_ACCEPT": (1, 0, 0), "C_CONCLUDE": (0, 0, 0), "R_DECIDE": (1, 0, 0),
                                    "R_REPLY": (0, 1, 0)}
    assert chengdu["reply_rate"] == 0.5 and chengdu["callback_rate"] is None
    assert chengdu["satisfaction_rate"] is None and chengdu["case_filing_rate"] == 1.0
    assert chengdu["recovered_amount"] == "0.00"
    assert chengdu["score"] == pytest.approx(100 * (40 * 2 / 3 + 20 * 0.5) / 60) and chengdu["rank"] == 2

    total = doc["total"]
    assert total["unit"]["code"] == "510000" and total["rank"] is None
    assert total["received"] == 6 and total["received_by_kind"]["INQUIRY"] == 1
    assert total["received_by_channel"]["WEB"] == 1 and total["received_by_channel"]["HOTLINE"] == 5
    assert total["received_by_hotline"] == {"12315": 5, "12365": 0, "12331": 0, "12358": 0, "12330": 0}
    assert (total["on_time"], total["late"], total["overdue"]) == (4, 2, 2)
    assert total["reply_rate"] == 2 / 3
    assert total["score"] == pytest.approx(40 * 0.5 + 20 * 2 / 3 + 30 + 10)


async def test_as_of_shows_what_was_known_then(march: Database) -> None:
    doc = await report(march, "510000", as_of=datetime.fromisoformat("2024-03-12T12:00:00+08:00"))
    guangyuan, chengdu = sorted(doc["rows"], key=lambda r: r["unit"]["code"], reverse=True)
    assert guangyuan["received"] == 2  # F not received yet
    assert obligations(guangyuan)["C_ACCEPT"] == (0, 0, 0)  # A and B pending on their due day
    assert guangyuan["timeliness_rate"] is None and guangyuan["score"] is None and guangyuan["rank"] is None
    assert obligations(chengdu)["C_ACCEPT"] == (1, 0, 0) and obligations(chengdu)["R_DECIDE"] == (0, 0, 0)
    assert chengdu["case_filing_rate"] is None  # the filing is still in the future
    assert [r["unit"]["code"] for r in doc["rows"]] == ["510100", "510800"]  # the null score comes last
    later = await report(march, "510000", as_of=datetime.fromisoformat("2024-03-13T00:00:00+08:00"))
    assert obligations(next(r for r in later["rows"] if r["unit"]["code"] == "510800"))["C_ACCEPT"] == (1, 0, 1)


async def test_city_by_station_with_county_records_in_total_only(march: Database) -> None:
    doc = await report(march, "510800", level=5)
    assert [(r["unit"]["code"], r["rank"]) for r in doc["rows"]] == [
        ("510802001", 1), ("510811001", 2), ("510802002", None),
    ]
    empty = doc["rows"][2]
    assert empty["received"] == 0 and empty["timeliness_rate"] is None and empty["recovered_amount"] == "0.00"
    assert doc["total"]["received"] == 3  # F, handled by the county 510802, counts in the total only
    assert sum(r["received"] for r in doc["rows"]) == 2


async def test_equal_scores_share_a_rank(db: Database) -> None:
    await load_units(db.sessionmaker)
    await ingest(db, [
        complaint("S1", "510802001", "2024-03-01T09:30", e("S1", 1, "ACCEPTED", "2024-03-04T09:00")),
        complaint("S2", "510802002", "2024-03-01T09:30", e("S2", 1, "ACCEPTED", "2024-03-05T09:00")),
        complaint("S3", "510811001", "2024-03-01T09:30", e("S3", 1, "ACCEPTED", "2024-03-13T09:00")),
    ])
    doc = await report(db, "510000", level=5, as_of=datetime.fromisoformat("2024-03-20T00:00:00+08:00"))
    assert [(r["unit"]["code"], r["score"], r["rank"]) for r in doc["rows"]] == [
        ("510802001", 100.0, 1), ("510802002", 100.0, 1), ("510811001", 0.0, 3), ("510104001", None, None),
    ]


async def test_updates_derive_facts_again(march: Database) -> None:
    b = complaint("B", "510811001", "2024-03-01T09:30", e("B", 1, "ACCEPTED", "2024-03-13T09:00"),
                  e("B", 2, "CALLBACK", "2024-04-03T10:00", satisfaction="UNREACHABLE"),
                  e("B", 3, "MEDIATION_FAILED", "2024-04-10T10:00", reason="x"), recovered_amount=None)
    await ingest(march, [b])
    row = next(r for r in (await report(march, "510000"))["rows"] if r["unit"]["code"] == "510800")
    assert obligations(row)["C_CONCLUDE"] == (2, 0, 0)
    assert row["mediation_success_rate"] == 0.5 and row["reply_rate"] == 0.5  # B now owes a reply


async def test_extension_steps_are_stored(march: Database) -> None:
    async with march.sessionmaker() as session:
        steps = (await session.execute(
            select(KpiObligationFact.step, KpiObligationFact.due_day)
            .where(KpiObligationFact.complaint_id == "C", KpiObligationFact.obligation == "R_DECIDE")
            .order_by(KpiObligationFact.step)
        )).all()
    assert [tuple(s) for s in steps] == [(0, date(2024, 3, 22)), (1, date(2024, 3, 29))]


@pytest.mark.parametrize(
    ("kwargs", "code", "message"),
    [
        ({"unit": "999999"}, "NOT_FOUND", "unknown unit"),
        ({"unit": "510000", "level": 2}, "BAD_USER_INPUT", "level"),
        ({"unit": "510000", "level": 6}, "BAD_USER_INPUT", "level"),
        ({"unit": "510802001"}, "BAD_USER_INPUT", "level-5"),
        ({"unit": "510000", "date_from": date(2024, 4, 1)}, "BAD_USER_INPUT", "after"),
        ({"unit": "510000", "scheme": "nope"}, "BAD_USER_INPUT", "unknown scoring scheme"),
        ({"unit": "510000", "as_of": datetime(2024, 6, 30)}, "BAD_USER_INPUT", "offset"),
    ],
)
async def test_bad_input(march: Database, kwargs: dict[str, Any], code: str, message: str) -> None:
    with pytest.raises(ReportError, match=message) as info:
        await report(march, **kwargs)
    assert info.value.code == code


async def test_year_outside_the_package_with_and_without_holiday_file(db: Database, tmp_path: Path) -> None:
    await load_units(db.sessionmaker)
    # Thu 2026-12-31 + 7 working days: 2027-01-11 by Monday–Friday, 2027-01-12 with New Year's Day off.
    await ingest(db, [complaint("Y", "510802001", "2026-12-31T10:00", e("Y", 1, "ACCEPTED", "2027-01-12T10:00"))])
    window = {"date_from": date(2026, 12, 1), "date_to": date(2026, 12, 31),
              "as_of": datetime.fromisoformat("2027-02-01T00:00:00+08:00")}
    plain = await report(db, "510800", level=5, **window)
    assert plain["calendar_complete"] is False
    assert obligations(plain["total"])["C_ACCEPT"] == (0, 1, 0)
    holidays = tmp_path / "holidays.csv"
    holidays.write_text("date,kind\n2027-01-01,holiday\n", encoding="utf-8")
    with_file = await report(db, "510800", level=5, config=kpi_config(str(holidays)), **window)
    assert with_file["calendar_complete"] is True  # facts were derived again with the file's calendar
    assert obligations(with_file["total"])["C_ACCEPT"] == (1, 0, 0)


async def test_policy_switch_on_its_effective_date(db: Database) -> None:
    await load_units(db.sessionmaker)
    await ingest(db, [
        complaint("P1", "510802001", "2026-04-14T23:59", e("P1", 1, "ACCEPTED", "2026-04-23T10:00")),
        complaint("P2", "510802001", "2026-04-15T00:00", e("P2", 1, "ACCEPTED", "2026-04-23T10:00")),
    ])
    policies = Policies.from_json(
        '{"policies": [{"version": "order-121", "effective_from": "2026-04-15",'
        ' "days": {"C_ACCEPT": 5, "C_CONCLUDE": 30, "R_DECIDE": 10, "R_REPLY": 3}}],'
        ' "schemes": {"timely": {"timeliness_rate": 1}}}'
    )
    config = KpiConfig(WorkCalendar(), policies)
    as_of = datetime.fromisoformat("2026-05-01T00:00:00+08:00")
    doc = await report(db, "510800", level=5, date_from=date(2026, 4, 1), date_to=date(2026, 4, 30), as_of=as_of,
                       config=config, scheme="timely")
    assert doc["policy_versions"] == ["order-20", "order-121"]
    assert obligations(doc["total"])["C_ACCEPT"] == (1, 1, 0)  # due 04-23 under order-20, 04-22 under 121
    assert obligations(doc["total"])["C_CONCLUDE"] == (0, 0, 0)  # started, pending
    assert doc["scheme"] == "timely" and doc["total"]["score"] == 50.0
    only_before = await report(db, "510800", level=5, date_from=date(2026, 4, 14), date_to=date(2026, 4, 14),
                               as_of=as_of, config=config)
    assert only_before["policy_versions"] == ["order-20", "order-121"]  # P1's C_CONCLUDE starts under 121
    before_accept = await report(db, "510800", level=5, date_from=date(2026, 4, 14), date_to=date(2026, 4, 14),
                                 as_of=datetime.fromisoformat("2026-04-20T00:00:00+08:00"), config=config)
    assert before_accept["policy_versions"] == ["order-20"]


# ------------------------------------------------------------------------------------- property test

UNIT_CODES = [line.split(",")[0] for line in UNITS_CSV.strip().splitlines()[1:]]
EVENT_TYPES = ["ACCEPTED", "REJECTED", "MEDIATION_SUCCEEDED", "MEDIATION_FAILED", "CLOSED", "EXTENDED",
               "CASE_FILED", "CASE_NOT_FILED", "REPLIED", "CALLBACK", "DISPATCHED", "REOPENED"]
LIFECYCLES = [
    ["ACCEPTED", "MEDIATION_SUCCEEDED", "REPLIED", "CALLBACK", "CLOSED", "CALLBACK", "CALLBACK"],
    ["ACCEPTED", "MEDIATION_FAILED", "CLOSED", "CALLBACK", "REPLIED", "CALLBACK", "CALLBACK"],
    ["REJECTED", "REPLIED", "CALLBACK", "ACCEPTED", "CLOSED", "CALLBACK", "REPLIED"],
    ["EXTENDED", "EXTENDED", "CASE_FILED", "REPLIED", "CALLBACK", "EXTENDED", "CALLBACK"],
    ["VERIFIED", "EXTENDED", "CASE_NOT_FILED", "CALLBACK", "REPLIED", "CALLBACK", "CASE_FILED"],
]
BASE = datetime.fromisoformat("2024-09-20T00:00:00+08:00")  # across National Day and its adjusted days
STEP = timedelta(hours=7)  # a coarse grid, so that events, receipts and as_of often coincide
SWITCHING_POLICIES = Policies.from_json(
    '{"policies": [{"version": "v2", "effective_from": "2024-10-10",'
    ' "days": {"C_ACCEPT": 3, "C_CONCLUDE": 10, "R_DECIDE": 4, "R_REPLY": 2}, "r_decide_extension_cap": 6}]}'
)


def _data(type_: str, rnd: random.Random) -> dict[str, Any]:
    return {
        "EXTENDED": lambda: {"working_days": rnd.randint(1, 12)},
        "CALLBACK": lambda: {"satisfaction": rnd.choice(["SATISFIED", "BASICALLY_SATISFIED", "UNSATISFIED",
                                                        "UNREACHABLE"])},
        "CASE_FILED": lambda: {"case_no": "N"}, "VERIFIED": dict,
        "DISPATCHED": lambda: {"to": "510802001"},
        "REJECTED": lambda: {"reason": "r"}, "MEDIATION_FAILED": lambda: {"reason": "r"},
        "CASE_NOT_FILED": lambda: {"reason": "r"}, "REOPENED": lambda: {"reason": "r"},
    }.get(type_, dict)()


def random_records(seed: int, n: int) -> tuple[list[dict[str, Any]], list[Rec]]:
    rnd = random.Random(seed)
    raws: list[dict[str, Any]] = []
    recs: list[Rec] = []
    for i in range(n):
        kind = rnd.choice(["COMPLAINT", "COMPLAINT", "REPORT", "REPORT", "INQUIRY", "SUGGESTION"])
        channel = rnd.choice(["HOTLINE", "WEB", "GOV_HOTLINE_TRANSFER"])
        hotline = rnd.choice(["12315", "12365", None]) if channel == "HOTLINE" else None
        received = BASE + STEP * rnd.randint(0, 40)
        events: list[tuple[datetime, dict[str, Any]]] = []
        if rnd.random() < 0.5:  # any events in any order, even before receipt
            types = [rnd.choice(EVENT_TYPES) for _ in range(rnd.randint(0, 8))]
            times = [received + STEP * rnd.randint(-1, 60) for _ in types]
        else:  # a plausible lifecycle, cut short at random
            types = rnd.choice(LIFECYCLES)[: rnd.randint(0, 7)]
            times = [received + STEP * k for k in sorted(rnd.randint(0, 60) for _ in types)]
        for j, (type_, at) in enumerate(zip(types, times, strict=True)):
            events.append((at, event(f"r{i}-{j}", type_, at.isoformat(), _data(type_, rnd))))
        cents = rnd.choice([None, rnd.randint(0, 10**7)])
        raw = record(f"r{i}", kind=kind, channel=channel, hotline=hotline, handling_unit=rnd.choice(UNIT_CODES),
                     received_at=received.isoformat(), events=[ev for _, ev in events],
                     complainant={"name": None, "phone": None, "real_name": rnd.random() < 0.6},
                     recovered_amount=None if cents is None else f"{cents // 100}.{cents % 100:02d}")
        raws.append(raw)
        ordered = sorted(events, key=lambda pair: pair[0])  # the store's order: by at, ties as given
        recs.append(Rec(raw["id"], kind, channel, hotline, received, raw["handling_unit"],
                        raw["complainant"]["real_name"], cents or 0,
                        [Ev(ev["type"], at, ev["data"]) for at, ev in ordered]))
    return raws, recs


async def _reset(db: Database) -> None:
    async with transaction(db.sessionmaker) as session:
        for model in (*FACT_MODELS, Event, Complainant, Complaint):
            await session.execute(delete(model))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), n=st.integers(1, 40),
       target=st.sampled_from([("510000", 3), ("510000", 4), ("510000", 5), ("510800", 5), ("100000", 2)]),
       window=st.tuples(st.integers(-2, 16), st.integers(0, 20)))
async def test_sql_engine_matches_record_by_record_computation(
    db: Database, seed: int, n: int, target: tuple[str, int], window: tuple[int, int]
) -> None:
    await _reset(db)  # hypothesis runs every example on the same database
    async with transaction(db.sessionmaker) as session:
        if not (await load_unit_index(session)).units:
            await import_units(session, UNITS_CSV)
    raws, recs = random_records(seed, n)
    await ingest(db, raws)
    date_from = (BASE + timedelta(days=window[0])).date()
    date_to = date_from + timedelta(days=window[1])
    config = KpiConfig(WorkCalendar(), SWITCHING_POLICIES)
    unit, level = target
    # The edges are where rules go wrong: evaluate at event instants and just before them.
    rnd = random.Random(seed)
    instants = sorted({e.at for r in recs for e in r.events} | {r.received_at for r in recs})
    as_ofs = [BASE + STEP * rnd.randint(-2, 120), BASE + timedelta(days=400)]  # the last: every record settled
    for at in rnd.sample(instants, min(12, len(instants))):
        as_ofs += [at, at - timedelta(seconds=1)]
    # ... and where an unfulfilled obligation turns OVERDUE: midnight after its due date, and the second before.
    async with db.sessionmaker() as session:
        dues = sorted(set((await session.execute(select(KpiObligationFact.due_day))).scalars()))
    for due in rnd.sample(dues, min(6, len(dues))):
        turn = datetime.combine(due + timedelta(days=1), time(0), SH)
        as_ofs += [turn, turn - timedelta(seconds=1)]
    for as_of in as_ofs:
        got = await report(db, unit, level=level, date_from=date_from, date_to=date_to, as_of=as_of, config=config)
        want = reference_report(recs, UNITS_CSV, unit, level, date_from, date_to, as_of, config.calendar,
                                config.policies)
        assert got == want, f"as_of {as_of}"


async def test_sql_engine_matches_at_every_edge_of_one_dataset(db: Database) -> None:
    """Dense rather than random: every instant at which something happens, and the second before it."""
    await load_units(db.sessionmaker)
    raws, recs = random_records(20240917, 30)
    await ingest(db, raws)
    config = KpiConfig(WorkCalendar(), SWITCHING_POLICIES)
    window = {"date_from": BASE.date(), "date_to": BASE.date() + timedelta(days=10)}
    for at in sorted({e.at for r in recs for e in r.events} | {r.received_at for r in recs}):
        for as_of in (at, at - timedelta(seconds=1)):
            got = await report(db, "100000", level=3, as_of=as_of, config=config, **window)
            want = reference_report(recs, UNITS_CSV, "100000", 3, window["date_from"], window["date_to"], as_of,
                                    config.calendar, config.policies)
            assert got == want, f"as_of {as_of}"
