"""The `overdue` filter in SQL (gateway.reports.deadlines.overdue_condition) against the record-by-record
rule (`is_overdue`: the kpi engine over the record's events) at many instants, on both databases."""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta
from types import SimpleNamespace

from sqlalchemy import select

from gateway.complaints.models import Complaint, Event
from gateway.reports.deadlines import is_overdue, overdue_condition
from gateway.reports.models import KpiObligationFact
from tests.conftest import Database
from tests.factories import load_units
from tests.kpi_reference import SH
from tests.reports.test_reports import BASE, ingest, random_records

SETTINGS = SimpleNamespace(holidays_file=None, policy_file=None)  # the configuration the facts were derived with


async def test_overdue_condition_matches_the_record_by_record_rule(db: Database) -> None:
    await load_units(db.sessionmaker)
    raws, recs = random_records(23, 60)
    await ingest(db, raws)
    rnd = random.Random(23)
    async with db.sessionmaker() as session:
        complaints = list((await session.execute(select(Complaint))).scalars())
        events = {c.id: list((await session.execute(
            select(Event).where(Event.complaint_id == c.id).order_by(Event.seq))).scalars()) for c in complaints}
        dues = sorted(set((await session.execute(select(KpiObligationFact.due_day))).scalars()))
    instants = sorted({e.at for r in recs for e in r.events} | {r.received_at for r in recs})
    nows = [BASE + timedelta(days=400), *rnd.sample(instants, 10)]
    for due in rnd.sample(dues, min(6, len(dues))):
        turn = datetime.combine(due + timedelta(days=1), time(0), SH)
        nows += [turn, turn - timedelta(seconds=1)]
    checked = set()
    for now in nows:
        want = {c.id for c in complaints if is_overdue(c, events[c.id], SETTINGS, now)}
        async with db.sessionmaker() as session:
            got = set((await session.execute(
                select(Complaint.id).where(overdue_condition(Complaint.id, now)))).scalars())
            not_got = set((await session.execute(
                select(Complaint.id).where(~overdue_condition(Complaint.id, now)))).scalars())
        assert got == want, f"now {now}"
        assert not_got == {c.id for c in complaints} - want
        checked.add(bool(want))
    assert checked == {True, False}  # instants with and without overdue records
