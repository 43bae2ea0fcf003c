"""Jurisdiction (属地), the one rule over every table that hangs on a unit, checked against the tree itself
(`UnitIndex.is_within`, which walks no ancestor column), for callers at every level."""

from __future__ import annotations

from datetime import UTC, date, datetime

import httpx
import pytest
from sqlalchemy import select

from gateway.api.app import create_app
from gateway.complaints.models import Complaint
from gateway.core.auth import mint_token
from gateway.core.db import transaction
from gateway.core.settings import Settings
from gateway.flags.alerts import list_alerts
from gateway.flags.models import AlertRow, FlagRow
from gateway.flags.store import list_flags
from gateway.units.jurisdiction import Jurisdiction, caller_sees_unit, jurisdiction_of
from gateway.units.models import OrgUnit
from gateway.units.tree import load_units as load_index
from tests.conftest import Database
from tests.factories import load_units
from tests.flags.support import rec, store

CALLERS = ["100000", "510000", "510800", "510100", "510802", "510811", "510802001", "510104001"]


async def seed(db: Database) -> None:
    await load_units(db.sessionmaker)
    # A CRITICAL food record raises a CRITICAL_SAFETY flag issued by its handling unit.
    await store(db, [rec(f"J-{unit}", "2024-03-16T10:00:00+08:00", urgency="CRITICAL", category="FOOD",
                         kind="INQUIRY", unit=unit) for unit in ("510802001", "510811001", "510104001", "510800")])
    now = datetime.now(UTC)
    async with transaction(db.sessionmaker) as session:
        for county, city in (("510802", "510800"), ("510811", "510800"), ("510104", "510100")):
            session.add(AlertRow(alert_id=f"alert-{county}", unit_code=county, a1="100000", a2="510000", a3=city,
                                 category="FOOD", day=date(2024, 3, 16), count=9, baseline=0.5, threshold=8,
                                 raised_at=now, updated_at=now))


@pytest.mark.parametrize("caller", CALLERS)
async def test_one_rule_for_units_records_flags_and_alerts(db: Database, caller: str) -> None:
    await seed(db)
    async with db.sessionmaker() as session:
        tree = await load_index(session)
        jurisdiction = await jurisdiction_of(session, caller)
        assert jurisdiction == Jurisdiction(caller, tree.units[caller].level)

        units = set((await session.execute(
            select(OrgUnit.code).where(jurisdiction.condition(OrgUnit.ancestor_columns())))).scalars())
        assert units == {code for code in tree.units if tree.is_within(code, caller)}
        for code in tree.units:
            assert await caller_sees_unit(session, caller, code) == tree.is_within(code, caller)

        records = (await session.execute(
            select(Complaint.id, Complaint.handling_unit)
            .where(jurisdiction.condition(Complaint.ancestor_columns())))).all()
        all_records = (await session.execute(select(Complaint.id, Complaint.handling_unit))).all()
        assert len(all_records) == 4
        assert set(records) == {r for r in all_records if tree.is_within(r.handling_unit, caller)}

        flags = await list_flags(session, first=100, jurisdiction=jurisdiction)
        every_flag = (await session.execute(select(FlagRow.flag_id, FlagRow.issued_by))).all()
        assert len(every_flag) == 4
        assert {f.flag_id for f in flags.items} == {
            fid for fid, issued_by in every_flag if tree.is_within(issued_by, caller)}

        alerts = await list_alerts(session, jurisdiction=jurisdiction)
        assert {a.unit_code for a in alerts} == {
            county for county in ("510802", "510811", "510104") if tree.is_within(county, caller)}
        # The alerts of a unit named by the caller: its counties, still within the caller's jurisdiction.
        for unit in ("510000", "510800", "510802", "510802001"):
            named = await list_alerts(session, unit=unit, jurisdiction=jurisdiction)
            assert {a.unit_code for a in named} == {
                county for county in ("510802", "510811", "510104")
                if tree.is_within(county, caller) and tree.is_within(county, unit)}


async def test_unknown_caller_unit_has_no_jurisdiction(db: Database) -> None:
    await load_units(db.sessionmaker)
    async with db.sessionmaker() as session:
        assert await jurisdiction_of(session, "999999") is None
        assert not await caller_sees_unit(session, "999999", "510000")
        assert not await caller_sees_unit(session, "510000", "999999")  # unknown target: not within


SECRET = "jurisdiction-test-secret-of-32-bytes"
FORM = {"unit": "510800", "level": "", "period": "custom", "from": "2024-03-01", "to": "2024-03-31", "as_of": ""}


@pytest.mark.parametrize("secret", [None, SECRET])
async def test_rest_and_page_sign_in_the_same_way(db: Database, secret: str | None) -> None:
    """The REST report and the evaluators' page check a bearer token the same way (gateway.api.auth, which the
    page's sign-in in gateway.api.session calls): without a GATEWAY_JWT_SECRET both refuse the caller with 401,
    neither fails with a 500; with it, both answer, and both refuse a unit outside the caller's."""
    await load_units(db.sessionmaker)
    app = create_app(Settings(database_url=db.url, jwt_secret=secret, dispatcher=False))  # type: ignore[arg-type]
    bearer = {"Authorization": f"Bearer {mint_token(SECRET, 'eval', '510000', ['evaluator'])}"}
    city = {"Authorization": f"Bearer {mint_token(SECRET, 'eval', '510800', ['evaluator'])}"}
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://gw"
    ) as client:
        rest = await client.get("/api/v1/kpi/report", params={k: v for k, v in FORM.items() if v}, headers=bearer)
        page = await client.post("/reports", data=FORM, headers=bearer)
        download = await client.post("/reports/download", data={**FORM, "format": "csv"}, headers=bearer)
        foreign = await client.post("/reports", data={**FORM, "unit": "510100"}, headers=city)
        foreign_rest = await client.get("/api/v1/kpi/report", params={**{k: v for k, v in FORM.items() if v},
                                                                      "unit": "510100"}, headers=city)
    if secret is None:
        assert rest.status_code == 401 and rest.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert page.status_code == 401 and "令牌无效" in page.text, page.text
        assert download.status_code == 401 and "令牌无效" in download.text
    else:
        assert rest.status_code == 200, rest.text
        assert page.status_code == 200 and "id=summary" in page.text  # no records: the empty-period note
        assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
        assert foreign.status_code == 403 and "不在您的管辖范围内" in foreign.text
        assert foreign_rest.status_code == 403
