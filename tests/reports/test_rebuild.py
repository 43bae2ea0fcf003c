"""`rebuild_all` after the calendar or a policy changed gives exactly the facts of deriving every record again
from its events (the per-batch derivation), on both databases: reports with extensions before, after and
without a decision, steps starting on either side of a new policy version, a new holiday."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select, text

from connectors.simulators import generate_records, sample_units_csv
from gateway.complaints.models import Complaint
from gateway.core.db import transaction
from gateway.ingest.store import ingest_raw
from gateway.reports import facts
from kpi.calendar import WorkCalendar, parse_holiday_csv
from kpi.policies import Policies
from tests.conftest import Database
from tests.factories import event, load_units, record

NEW_POLICY = {"policies": [{"version": "test-2024", "effective_from": "2024-03-15",
                            "days": {"C_ACCEPT": 3, "C_CONCLUDE": 20, "R_DECIDE": 8, "R_REPLY": 2},
                            "r_decide_extension_cap": 4}]}
HOLIDAYS = "date,kind\n2024-03-18,holiday\n2024-03-19,holiday\n2024-03-23,workday\n"


def report(rid: str, *events: dict[str, Any], real_name: bool = True) -> dict[str, Any]:
    return record(rid, kind="REPORT", channel="WEB", hotline=None, received_at="2024-03-16T09:00:00+08:00",
                  complainant={"name": "王五", "phone": None, "real_name": real_name}, events=list(events))


EXTENSIONS = [
    report("R-EXT-DECIDED", event("a1", "EXTENDED", "2024-03-20T10:00:00+08:00", {"working_days": 3}),
           event("a2", "EXTENDED", "2024-03-25T10:00:00+08:00", {"working_days": 5}),
           event("a3", "CASE_FILED", "2024-04-15T10:00:00+08:00", {"case_no": "C-1"}),
           event("a4", "REPLIED", "2024-04-20T10:00:00+08:00")),
    report("R-EXT-OPEN", event("b1", "EXTENDED", "2024-03-16T09:00:00+08:00", {"working_days": 2}),
           event("b2", "EXTENDED", "2024-03-28T10:00:00+08:00", {"working_days": 30})),
    report("R-EXT-AFTER", event("c1", "CASE_NOT_FILED", "2024-03-20T10:00:00+08:00", {"reason": "x"}),
           event("c2", "EXTENDED", "2024-03-22T10:00:00+08:00", {"working_days": 5}), real_name=False),
]


async def obligations_and_others(db: Database, session: Any) -> tuple[list[Any], list[Any]]:
    obligations = (await session.execute(text("SELECT * FROM kpi_obligation_facts ORDER BY 1, 9, 10"))).all()
    others = [(await session.execute(text(f"SELECT * FROM {t} ORDER BY 1, 2"))).all()
              for t in ("kpi_record_facts", "kpi_callback_facts")]
    return obligations, others


@pytest.mark.parametrize("change", ["policy", "calendar"])
async def test_rebuild_gives_what_deriving_every_record_again_gives(db: Database, change: str) -> None:
    await load_units(db.sessionmaker, sample_units_csv())
    async with transaction(db.sessionmaker) as session:
        result = await ingest_raw(session, [*generate_records(200, seed=13, days=45), *EXTENSIONS])
        assert not result.rejected
    base = facts.configured()
    if change == "policy":
        config = facts.KpiConfig(base.calendar, Policies.from_json(json.dumps(NEW_POLICY)))
    else:
        config = facts.KpiConfig(WorkCalendar([parse_holiday_csv(HOLIDAYS)]), base.policies)
    assert config.fingerprint != base.fingerprint

    async with db.sessionmaker() as session, session.begin():
        before = await obligations_and_others(db, session)
        assert await facts.rebuild_all(session, config) == 203
        rebuilt = await obligations_and_others(db, session)
        await session.rollback()
    async with db.sessionmaker() as session, session.begin():
        ids = list((await session.execute(select(Complaint.id).order_by(Complaint.id))).scalars())
        for start in range(0, len(ids), 50):
            await facts._derive_batch(session, ids[start:start + 50], config)
        derived = await obligations_and_others(db, session)
        await session.rollback()
    assert rebuilt == derived
    assert rebuilt[0] != before[0], "the change moves some due dates: the comparison is not vacuous"


async def test_a_record_stored_after_a_change_gets_all_its_facts(db: Database, monkeypatch: Any) -> None:
    """The first store after a configuration change rebuilds the stored facts and still derives the new records'
    own (a rebuild works from stored facts; new records have none yet)."""
    await load_units(db.sessionmaker, sample_units_csv())
    async with transaction(db.sessionmaker) as session:
        await ingest_raw(session, generate_records(20, seed=2))
    changed = facts.KpiConfig(facts.configured().calendar, Policies.from_json(json.dumps(NEW_POLICY)))
    monkeypatch.setattr(facts, "configured", lambda: changed)
    async with transaction(db.sessionmaker) as session:
        await ingest_raw(session, [*EXTENSIONS, record("AFTER-1")], per_record=True)
    async with db.sessionmaker() as session:
        count = (await session.execute(text("SELECT count(*) FROM kpi_record_facts"))).scalar_one()
        policies = set((await session.execute(text("SELECT DISTINCT policy FROM kpi_obligation_facts"))).scalars())
    assert count == 24 and "test-2024" in policies
