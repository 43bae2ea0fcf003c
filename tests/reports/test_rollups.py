"""The rollups stay what a rebuild from the facts gives, through updates, unit moves and configuration
changes, and reports read from them stay equal to the record-by-record reference (tests/kpi_reference.py)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

from gateway.core.db import transaction
from gateway.reports import rollups
from gateway.reports.facts import KpiConfig, ensure_current
from gateway.reports.models import RECORD_FACT_MODELS, kpi_open_rollup, kpi_rollup
from kpi.calendar import WorkCalendar
from tests.conftest import Database
from tests.factories import UNITS_CSV, load_units
from tests.kpi_reference import Ev, Rec, reference_report
from tests.reports.test_reports import BASE, SWITCHING_POLICIES, ingest, random_records, report

CONFIG = KpiConfig(WorkCalendar(), SWITCHING_POLICIES)
WINDOW = {"date_from": BASE.date() - timedelta(days=2), "date_to": BASE.date() + timedelta(days=14)}


async def rollup_contents(db: Database) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    """Both rollups, rows that count something only (a row whose records all left keeps zeros)."""
    async with db.sessionmaker() as session:
        main = {tuple(r) for r in (await session.execute(select(kpi_rollup).where(kpi_rollup.c.records != 0)))}
        opened = {tuple(r) for r in (await session.execute(select(kpi_open_rollup)
                                                            .where(kpi_open_rollup.c.open != 0)))}
    return main, opened


async def assert_rollups_match_a_rebuild(db: Database) -> None:
    kept = await rollup_contents(db)
    assert kept[0], "no rollup rows at all"
    async with transaction(db.sessionmaker) as session:
        await rollups.rebuild(session)
    assert await rollup_contents(db) == kept


async def assert_reports_match(db: Database, recs: list[Rec], units_csv: str, seed: int) -> None:
    rnd = random.Random(seed)
    instants = sorted({e.at for r in recs for e in r.events} | {r.received_at for r in recs})
    as_ofs = [BASE + timedelta(days=300), *rnd.sample(instants, min(6, len(instants)))]
    for as_of in as_ofs:
        for unit, level in (("100000", 3), ("510000", 5)):
            got = await report(db, unit, level=level, as_of=as_of, config=CONFIG, **WINDOW)
            want = reference_report(recs, units_csv, unit, level, WINDOW["date_from"], WINDOW["date_to"], as_of,
                                    CONFIG.calendar, CONFIG.policies)
            assert got == want, f"{unit} level {level} as_of {as_of}"


def updated_versions(raws: list[dict[str, Any]], recs: list[Rec], seed: int) -> tuple[list[dict[str, Any]],
                                                                                       list[Rec]]:
    """New versions of some records: another unit, kind, receipt, and more events (stored ones are kept:
    the store merges events by id)."""
    others, other_recs = random_records(seed, len(raws))
    rnd = random.Random(seed)
    out_raws, out_recs = [], []
    for raw, rec, other, other_rec in zip(raws, recs, others, other_recs, strict=True):
        if rnd.random() < 0.4:
            out_recs.append(rec)
            continue
        extra = [dict(ev, id=f"u-{ev['id']}") for ev in other["events"]]
        new_raw = dict(other, id=raw["id"], events=raw["events"] + extra)
        events = [Ev(e.type, e.at, e.data) for e in sorted(rec.events + other_rec.events, key=lambda e: e.at)]
        out_raws.append(new_raw)
        out_recs.append(Rec(raw["id"], other_rec.kind, other_rec.channel, other_rec.hotline, other_rec.received_at,
                            other_rec.handling_unit, other_rec.real_name, other_rec.recovered_cents, events))
    return out_raws, out_recs


async def test_updates_keep_rollups_equal_to_a_rebuild(db: Database) -> None:
    await load_units(db.sessionmaker)
    raws, recs = random_records(7, 40)
    async with transaction(db.sessionmaker) as session:
        await ensure_current(session, CONFIG)
    await ingest(db, raws)
    await assert_rollups_match_a_rebuild(db)
    new_raws, recs = updated_versions(raws, recs, 8)
    await ingest(db, new_raws[:10])  # two batches: records updated once, and again
    await ingest(db, new_raws)
    await assert_rollups_match_a_rebuild(db)
    await assert_reports_match(db, recs, UNITS_CSV, 9)


async def test_unit_move_moves_rollups(db: Database) -> None:
    await load_units(db.sessionmaker)
    raws, recs = random_records(11, 40)
    async with transaction(db.sessionmaker) as session:
        await ensure_current(session, CONFIG)
    await ingest(db, raws)
    moved = UNITS_CSV.replace("510811,昭化区市场监督管理局,4,510800", "510811,昭化区市场监督管理局,4,510100")
    assert moved != UNITS_CSV
    await load_units(db.sessionmaker, moved)
    await assert_rollups_match_a_rebuild(db)
    await assert_reports_match(db, recs, moved, 12)


async def test_configuration_change_rebuilds_rollups(db: Database) -> None:
    """Other deadline policies: every due date moves, and so do the rollups, on first use."""
    await load_units(db.sessionmaker)
    raws, recs = random_records(13, 30)
    await ingest(db, raws)  # derived with the default configuration
    as_of = datetime.fromisoformat("2024-10-20T00:00:00+08:00")
    got = await report(db, "100000", level=3, as_of=as_of, config=CONFIG, **WINDOW)  # facts derived again
    want = reference_report(recs, UNITS_CSV, "100000", 3, WINDOW["date_from"], WINDOW["date_to"], as_of,
                            CONFIG.calendar, CONFIG.policies)
    assert got == want
    await assert_rollups_match_a_rebuild(db)


async def test_report_reads_rollups_not_records(db: Database) -> None:
    """Settled records are counted from the rollups: take a record's facts away behind the rollups' back and
    a settled report still counts it (the rollup, not a per-record scan, answered)."""
    await load_units(db.sessionmaker)
    raws, recs = random_records(17, 20)
    await ingest(db, raws)
    as_of = BASE + timedelta(days=300)
    before = await report(db, "100000", level=3, as_of=as_of, config=CONFIG, **WINDOW)
    async with transaction(db.sessionmaker) as session:
        for model in RECORD_FACT_MODELS:
            await session.execute(delete(model))
    after = await report(db, "100000", level=3, as_of=as_of, config=CONFIG, **WINDOW)
    assert after == before and before["total"]["received"] > 0
