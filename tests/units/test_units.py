"""The org-unit file of records.md: a broken tree is rejected whole, with the line named."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from gateway.complaints.models import Complaint
from gateway.core.db import transaction
from gateway.flags.alerts import list_alerts
from gateway.flags.models import AlertRow, FlagRow
from gateway.flags.store import list_flags
from gateway.ingest.store import ingest_raw
from gateway.ingest.units_file import UnitFileError, import_units
from gateway.units.jurisdiction import Jurisdiction
from gateway.units.models import OrgUnit
from gateway.units.tree import load_units
from tests.conftest import Database
from tests.factories import UNITS_CSV, record
from tests.factories import load_units as load_sample_units

HEADER = "code,name,level,parent_code\n"


async def count_units(db: Database) -> int:
    async with db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(OrgUnit)) or 0)


async def test_load_and_ancestors(db: Database) -> None:
    await load_sample_units(db.sessionmaker)
    async with db.sessionmaker() as session:
        index = await load_units(session)
    station = index.get("510802001")
    assert station is not None
    assert station.ancestors == ("100000", "510000", "510800", "510802", "510802001")
    assert index.is_within("510802001", "510800") and not index.is_within("510104001", "510800")
    assert not index.is_within("510800", "510802")


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        ("100000,总局,1,\n510000,省,2,100000\n510800,市,3,519900\n", 4, "unknown parent_code 519900"),
        ("100000,总局,1,\n510000,省,2,100000\n510802,县,4,510000\n", 4, "needs a level-3 parent"),
        ("100000,总局,1,\n510000,省,2,100000\n510000,省,2,100000\n", 4, "duplicate code 510000"),
        ("100000,总局,1,\n510000,省,6,100000\n", 3, "level must be 1 to 5"),
        ("100000,总局,1,\n510000,省,2,\n", 3, "parent_code is required"),
        ("100000,总局,1,100000\n", 2, "level-1 unit has no parent_code"),
        ("100000,总局,1,\n510000,省,2,100000\n510800,市,3,510000\n510802,县,4,510800\n510811001,所,5,510802\n",
         6, "must be its county code"),
        ("100000,总局,1,\n51000,省,2,100000\n", 3, "must be 6 digits"),
        ("100000,总局,1,\n510000,省,2\n", 3, "expected 4 columns"),
        ("100000,总局,1,\n510000,,2,100000\n", 3, "name is empty"),
    ],
)
async def test_broken_tree_rejected_whole(db: Database, body: str, line: int, words: str) -> None:
    with pytest.raises(UnitFileError) as info:
        async with transaction(db.sessionmaker) as session:
            await import_units(session, HEADER + body)
    assert f"line {line}" in str(info.value) and words in str(info.value)
    assert await count_units(db) == 0


async def test_cycle_is_rejected(db: Database) -> None:
    # Two level-2 units each naming the other: the level rule catches it first, naming a line.
    body = "100000,总局,1,\n510000,省,2,520000\n520000,省,2,510000\n"
    with pytest.raises(UnitFileError, match=r"line \d"):
        async with transaction(db.sessionmaker) as session:
            await import_units(session, HEADER + body)


async def test_bad_header(db: Database) -> None:
    with pytest.raises(UnitFileError, match="line 1: header"):
        async with transaction(db.sessionmaker) as session:
            await import_units(session, "code,name,level\n100000,总局,1\n")


async def test_reimport_is_idempotent_and_moves_update_records(db: Database) -> None:
    await load_sample_units(db.sessionmaker)
    async with transaction(db.sessionmaker) as session:
        assert await import_units(session, UNITS_CSV) == (0, 0)
        await ingest_raw(session, [record("MV-1", handling_unit="510811001")])
    # County 510811 moves from city 510800 to city 510100: its station and its records follow.
    async with transaction(db.sessionmaker) as session:
        added, updated = await import_units(session, HEADER + "510811,昭化区市场监督管理局,4,510100\n")
    assert (added, updated) == (0, 1)
    async with db.sessionmaker() as session:
        station = await session.get(OrgUnit, "510811001")
        c = await session.get(Complaint, "MV-1")
    assert station is not None and station.l3 == "510100"
    assert c is not None and (c.u3, c.u4) == ("510100", "510811")


async def test_file_may_extend_stored_tree(db: Database) -> None:
    await load_sample_units(db.sessionmaker)
    async with transaction(db.sessionmaker) as session:
        added, _ = await import_units(session, HEADER + "510802003,利州区南城市场监督管理所,5,510802\n")
    assert added == 1


async def test_a_move_rehomes_flags_and_alerts_already_raised(db: Database) -> None:
    """County 510811 moves from city 510800 (广元) to 510100 (成都): the flag issued by its station and the
    alert of the county follow it, so the new city sees them and the old one no longer does."""
    await load_sample_units(db.sessionmaker)
    now = datetime.now(UTC)
    async with transaction(db.sessionmaker) as session:
        await ingest_raw(session, [record("MV-F", handling_unit="510811001", urgency="CRITICAL", category="FOOD",
                                          kind="INQUIRY"),
                                   record("MV-S", handling_unit="510802001", urgency="CRITICAL", category="FOOD",
                                          kind="INQUIRY")])
        for county, city in (("510811", "510800"), ("510802", "510800")):
            session.add(AlertRow(alert_id=f"alert-{county}", unit_code=county, a1="100000", a2="510000", a3=city,
                                 category="FOOD", day=date(2024, 3, 16), count=9, baseline=0.5, threshold=8,
                                 raised_at=now, updated_at=now))

    async def seen_by(city: str) -> tuple[set[str], set[str]]:
        async with db.sessionmaker() as session:
            jurisdiction = Jurisdiction(city, 3)
            flags = await list_flags(session, jurisdiction=jurisdiction)
            alerts = await list_alerts(session, jurisdiction=jurisdiction)
        return {f.issued_by for f in flags.items}, {a.unit_code for a in alerts}

    assert await seen_by("510800") == ({"510811001", "510802001"}, {"510811", "510802"})
    assert await seen_by("510100") == (set(), set())
    async with transaction(db.sessionmaker) as session:
        await import_units(session, HEADER + "510811,昭化区市场监督管理局,4,510100\n")
    assert await seen_by("510800") == ({"510802001"}, {"510802"})
    assert await seen_by("510100") == ({"510811001"}, {"510811"})
    async with db.sessionmaker() as session:
        flag = (await session.execute(select(FlagRow).where(FlagRow.issued_by == "510811001"))).scalar_one()
    assert (flag.i1, flag.i2, flag.i3, flag.i4, flag.i5) == ("100000", "510000", "510100", "510811", "510811001")
