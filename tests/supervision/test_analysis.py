"""`trends` and `series` (supervision.md) on hand-computed fixtures, on SQLite and PostgreSQL.

Every expected number below is counted by hand from the records listed beside it."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from gateway.core.db import transaction
from gateway.ingest.store import ingest_raw
from gateway.supervision.analysis import (
    AnalysisError,
    TrendReport,
    one_year_earlier,
    previous_period,
    series,
    trends,
)
from tests.conftest import Database
from tests.factories import USCC, load_units, record

USCC_B = "91510800MA62L2XX5B"  # a second valid code


def rec(rid: str, at: str, **fields: Any) -> dict[str, Any]:
    return record(rid, received_at=at, events=[], **fields)


async def store(db: Database, records: list[dict[str, Any]]) -> None:
    await load_units(db.sessionmaker)
    async with transaction(db.sessionmaker) as session:
        result = await ingest_raw(session, records)
    assert not result.rejected, result.rejected


async def run_trends(db: Database, unit: str, f: str, t: str, by: str, compare: str = "PREVIOUS_PERIOD",
                     top: int = 20, **kw: Any) -> TrendReport:
    async with db.sessionmaker() as session:
        return await trends(session, unit, date.fromisoformat(f), date.fromisoformat(t), by, compare, top=top, **kw)


def table(report: TrendReport) -> list[tuple[str, int, int, float | None]]:
    return [(r.key, r.count, r.previous_count, r.change_rate) for r in report.rows]


# ----------------------------------------------------------------------------------------------- periods


def test_periods() -> None:
    d = date.fromisoformat
    # 环比: as many days, ending the day before `from`
    assert previous_period(d("2024-02-27"), d("2024-03-01"), "PREVIOUS_PERIOD") == (d("2024-02-23"), d("2024-02-26"))
    assert previous_period(d("2024-01-01"), d("2024-01-07"), "PREVIOUS_PERIOD") == (d("2023-12-25"), d("2023-12-31"))
    assert previous_period(d("2024-03-01"), d("2024-03-31"), "PREVIOUS_PERIOD") == (d("2024-01-30"), d("2024-02-29"))
    # 同比: one year earlier, 29 February as 28 February
    assert previous_period(d("2024-02-29"), d("2024-02-29"), "SAME_PERIOD_LAST_YEAR") == (d("2023-02-28"),
                                                                                          d("2023-02-28"))
    assert previous_period(d("2024-02-01"), d("2024-02-29"), "SAME_PERIOD_LAST_YEAR") == (d("2023-02-01"),
                                                                                          d("2023-02-28"))
    assert one_year_earlier(d("2025-03-01")) == d("2024-03-01")
    with pytest.raises(AnalysisError):
        previous_period(d("2024-01-01"), d("2024-01-02"), "LAST_WEEK")


# ------------------------------------------------------------------------------------------------ trends


LEAP = [
    # current period 2024-02-27 .. 2024-03-01 (four days, 29 Feb among them)
    rec("L1", "2024-02-29T10:00:00+08:00", category="FOOD"),
    rec("L2", "2024-02-29T23:59:00+08:00", category="FOOD"),
    rec("L3", "2024-03-01T00:30:00+08:00", category="PRICE"),  # 2024-02-29T16:30Z: Shanghai's 1 March
    rec("L4", "2024-02-27T08:00:00+08:00", category="DRUG"),
    # 环比 period 2024-02-23 .. 2024-02-26
    rec("L5", "2024-02-26T23:00:00+08:00", category="FOOD"),
    rec("L6", "2024-02-23T09:00:00+08:00", category="COSMETICS"),
    rec("L7", "2024-02-22T23:59:59+08:00", category="FOOD"),  # one day too early for either period
    # 同比 period 2023-02-27 .. 2023-03-01
    rec("L8", "2023-02-28T12:00:00+08:00", category="PRICE"),
    rec("L9", "2023-03-01T12:00:00+08:00", category="PRICE"),
    rec("L10", "2023-02-26T12:00:00+08:00", category="FOOD"),  # before it
]


async def test_trends_across_a_leap_day(db: Database) -> None:
    await store(db, LEAP)
    r = await run_trends(db, "510000", "2024-02-27", "2024-03-01", "CATEGORY")
    assert (r.previous_from, r.previous_to) == (date(2024, 2, 23), date(2024, 2, 26))
    # FOOD 2 vs 1 (+100 %); DRUG and PRICE 1 vs 0 (rate null), ordered by count, change, then key;
    # COSMETICS 0 vs 1 still listed (a previous count above 0)
    assert table(r) == [("FOOD", 2, 1, 1.0), ("DRUG", 1, 0, None), ("PRICE", 1, 0, None),
                        ("COSMETICS", 0, 1, -1.0)]
    assert [x.label for x in r.rows] == ["食品", "药品", "价格", "化妆品"]
    assert (r.total.count, r.total.previous_count, r.total.change, r.total.change_rate) == (4, 2, 2, 1.0)

    r = await run_trends(db, "510000", "2024-02-27", "2024-03-01", "CATEGORY", "SAME_PERIOD_LAST_YEAR")
    assert (r.previous_from, r.previous_to) == (date(2023, 2, 27), date(2023, 3, 1))
    assert table(r) == [("FOOD", 2, 0, None), ("DRUG", 1, 0, None), ("PRICE", 1, 2, -0.5)]
    assert (r.total.count, r.total.previous_count) == (4, 2)

    # 29 February alone against 28 February 2023, which had no record: every rate null
    r = await run_trends(db, "510000", "2024-02-29", "2024-02-29", "CATEGORY", "SAME_PERIOD_LAST_YEAR")
    assert (r.previous_from, r.previous_to) == (date(2023, 2, 28), date(2023, 2, 28))
    assert table(r) == [("FOOD", 2, 0, None), ("PRICE", 0, 1, -1.0)]
    assert (r.total.count, r.total.previous_count, r.total.change_rate) == (2, 1, 1.0)


YEAR_END = [
    rec("Y1", "2024-01-01T00:10:00+08:00", kind="REPORT"),  # 2023-12-31T16:10Z, but Shanghai's new year
    rec("Y2", "2024-01-07T23:50:00+08:00", kind="COMPLAINT"),
    rec("Y3", "2024-01-08T00:00:00+08:00", kind="COMPLAINT"),  # after `to`
    rec("Y4", "2023-12-31T23:59:00+08:00", kind="INQUIRY", handling_unit="510104001"),  # previous period
]


async def test_trends_across_a_year_boundary_with_empty_previous_periods(db: Database) -> None:
    await store(db, YEAR_END)
    r = await run_trends(db, "510000", "2024-01-01", "2024-01-07", "KIND")
    assert (r.previous_from, r.previous_to) == (date(2023, 12, 25), date(2023, 12, 31))
    assert table(r) == [("COMPLAINT", 1, 0, None), ("REPORT", 1, 0, None), ("INQUIRY", 0, 1, -1.0)]
    assert [x.label for x in r.rows] == ["投诉", "举报", "咨询"]
    # a city with nothing before: every changeRate null, the total's too
    r = await run_trends(db, "510800", "2024-01-01", "2024-01-07", "KIND", "SAME_PERIOD_LAST_YEAR")
    assert table(r) == [("COMPLAINT", 1, 0, None), ("REPORT", 1, 0, None)]
    assert (r.total.count, r.total.previous_count, r.total.change, r.total.change_rate) == (2, 0, 2, None)
    # nothing at all: no rows, a zero total
    r = await run_trends(db, "510811", "2024-01-01", "2024-01-07", "KIND")
    assert r.rows == [] and (r.total.count, r.total.previous_count, r.total.change_rate) == (0, 0, None)


UNITS = [
    # city 510800: county 510802 (two stations), county 510811, and the city itself
    rec("U1", "2024-05-02T10:00:00+08:00", handling_unit="510802001"),
    rec("U2", "2024-05-03T10:00:00+08:00", handling_unit="510802002"),
    rec("U3", "2024-05-03T11:00:00+08:00", handling_unit="510802"),
    rec("U4", "2024-05-04T10:00:00+08:00", handling_unit="510811001"),
    rec("U5", "2024-05-05T10:00:00+08:00", handling_unit="510800"),
    rec("U6", "2024-04-30T10:00:00+08:00", handling_unit="510811"),  # previous period
    rec("U7", "2024-04-29T10:00:00+08:00", handling_unit="510811001"),  # previous period
    rec("U8", "2024-05-02T10:00:00+08:00", handling_unit="510104001"),  # another city
]


async def test_trends_by_subordinate_unit(db: Database) -> None:
    await store(db, UNITS)
    r = await run_trends(db, "510800", "2024-05-01", "2024-05-05", "SUBORDINATE_UNIT")
    # 510802: 3 vs 0; 510811: 1 vs 2; the city's own record under its own code
    assert table(r) == [("510802", 3, 0, None), ("510800", 1, 0, None), ("510811", 1, 2, -0.5)]
    assert [x.label for x in r.rows] == ["利州区市场监督管理局", "广元市市场监督管理局", "昭化区市场监督管理局"]
    assert (r.total.count, r.total.previous_count) == (5, 2)
    # one level down from a county; and a station, whose every record is its own
    r = await run_trends(db, "510802", "2024-05-01", "2024-05-05", "SUBORDINATE_UNIT")
    assert table(r) == [("510802", 1, 0, None), ("510802001", 1, 0, None), ("510802002", 1, 0, None)]
    r = await run_trends(db, "510802001", "2024-05-01", "2024-05-05", "SUBORDINATE_UNIT")
    assert table(r) == [("510802001", 1, 0, None)]
    # top cuts the rows, never the total
    r = await run_trends(db, "510800", "2024-05-01", "2024-05-05", "SUBORDINATE_UNIT", top=1)
    assert table(r) == [("510802", 3, 0, None)] and r.total.count == 5
    r = await run_trends(db, "510800", "2024-05-01", "2024-05-05", "SUBORDINATE_UNIT", top=0)
    assert r.rows == [] and (r.total.count, r.total.previous_count) == (5, 2)


KEYS = [
    rec("K1", "2024-06-03T10:00:00+08:00", respondent={"uscc": USCC, "name": "旧名称餐饮"}, region_code="510802"),
    rec("K2", "2024-06-04T10:00:00+08:00", respondent={"uscc": USCC, "name": "新名称餐饮"}, region_code="510802"),
    rec("K3", "2024-06-04T10:00:00+08:00", respondent={"uscc": USCC_B, "name": "乙公司"}, region_code=None),
    rec("K4", "2024-06-05T10:00:00+08:00", respondent={"uscc": None, "name": "无照摊贩"}, region_code="110105"),
    rec("K5", "2024-06-05T10:00:00+08:00", respondent=None, channel="WEB", hotline=None),
]


async def test_enterprise_region_and_hotline_skip_records_without_a_key(db: Database) -> None:
    await store(db, KEYS)
    r = await run_trends(db, "510000", "2024-06-01", "2024-06-30", "ENTERPRISE")
    assert table(r) == [(USCC, 2, 0, None), (USCC_B, 1, 0, None)] and r.total.count == 3
    assert [x.label for x in r.rows] == ["新名称餐饮", "乙公司"]  # the latest record's name
    r = await run_trends(db, "510000", "2024-06-01", "2024-06-30", "REGION")
    assert table(r) == [("510802", 3, 0, None), ("110105", 1, 0, None)] and r.total.count == 4
    assert [x.label for x in r.rows] == ["利州区市场监督管理局", "110105"]
    r = await run_trends(db, "510000", "2024-06-01", "2024-06-30", "HOTLINE")
    assert table(r) == [("12315", 4, 0, None)] and r.total.count == 4
    r = await run_trends(db, "510000", "2024-06-01", "2024-06-30", "CHANNEL")
    assert table(r) == [("HOTLINE", 4, 0, None), ("WEB", 1, 0, None)]


async def test_trends_refuse_bad_input(db: Database) -> None:
    await load_units(db.sessionmaker)
    for args, message in (
        (("510000", "2024-02-01", "2024-01-01", "KIND"), "after"),
        (("510000", "2000-01-01", "2024-01-01", "KIND"), "days"),
        (("510000", "2024-01-01", "2024-01-02", "COLOUR"), "by must be"),
        (("510000", "2024-01-01", "2024-01-02", "KIND", "PREVIOUS_PERIOD", 501), "top"),
        (("510000", "2024-01-01", "2024-01-02", "KIND", "PREVIOUS_PERIOD", -1), "top"),
    ):
        with pytest.raises(AnalysisError, match=message):
            await run_trends(db, *args)  # type: ignore[arg-type]
    with pytest.raises(AnalysisError) as info:
        await run_trends(db, "110105", "2024-01-01", "2024-01-02", "KIND")
    assert info.value.code == "NOT_FOUND"


# ------------------------------------------------------------------------------------------------ series


SERIES = [
    rec("S1", "2024-03-04T10:00:00+08:00"),  # Monday of the first week, before `from`: not counted
    rec("S2", "2024-03-06T10:00:00+08:00"),  # Wednesday = from
    rec("S3", "2024-03-10T23:30:00+08:00"),  # Sunday
    rec("S4", "2024-03-12T10:00:00+08:00"),
    rec("S5", "2024-03-19T23:59:00+08:00"),  # Tuesday = to
    rec("S6", "2024-03-20T00:01:00+08:00"),  # after `to`: not counted
    rec("S7", "2024-03-06T10:00:00+08:00", handling_unit="510104001"),  # another city
]


async def run_series(db: Database, unit: str, f: str, t: str, interval: str) -> list[tuple[str, int]]:
    async with db.sessionmaker() as session:
        points = await series(session, unit, date.fromisoformat(f), date.fromisoformat(t), interval)
    return [(p.start.isoformat(), p.count) for p in points]


async def test_series_with_partial_first_and_last_weeks(db: Database) -> None:
    await store(db, SERIES)
    assert await run_series(db, "510800", "2024-03-06", "2024-03-19", "WEEK") == [
        ("2024-03-04", 2), ("2024-03-11", 1), ("2024-03-18", 1)]
    assert await run_series(db, "510000", "2024-03-06", "2024-03-19", "WEEK") == [
        ("2024-03-04", 3), ("2024-03-11", 1), ("2024-03-18", 1)]
    days = await run_series(db, "510800", "2024-03-09", "2024-03-13", "DAY")
    assert days == [("2024-03-09", 0), ("2024-03-10", 1), ("2024-03-11", 0), ("2024-03-12", 1), ("2024-03-13", 0)]
    # months overlapping the range, the first and last partial, across a year boundary
    assert await run_series(db, "510800", "2024-03-10", "2024-03-19", "MONTH") == [("2024-03-01", 3)]
    assert await run_series(db, "510800", "2023-12-15", "2024-03-05", "MONTH") == [
        ("2023-12-01", 0), ("2024-01-01", 0), ("2024-02-01", 0), ("2024-03-01", 1)]
    # a range that is one Sunday: its ISO week starts on the Monday before
    assert await run_series(db, "510800", "2024-03-10", "2024-03-10", "WEEK") == [("2024-03-04", 1)]
