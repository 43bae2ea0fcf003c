"""The store on SQLite and PostgreSQL: round trip of every field, idempotency, event merge, ordering."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select

from gateway.complaints.models import Complainant, Complaint, Event
from gateway.core.db import transaction
from gateway.core.money import cents_to_money
from gateway.ingest.store import ingest_raw
from tests.conftest import Database
from tests.factories import USCC, event, load_units, record


async def ingest(db: Database, raws: list[Any]) -> Any:
    async with transaction(db.sessionmaker) as session:
        return await ingest_raw(session, raws)


async def stored(db: Database, rid: str) -> tuple[Complaint, Complainant, list[Event]]:
    async with db.sessionmaker() as session:
        c = await session.get(Complaint, rid)
        p = await session.get(Complainant, rid)
        evs = (await session.execute(select(Event).where(Event.complaint_id == rid).order_by(Event.seq))).scalars()
        assert c is not None and p is not None
        return c, p, list(evs)


async def test_round_trip_of_every_field(db: Database) -> None:
    await load_units(db.sessionmaker)
    raw = record(
        "RT-1",
        kind="REPORT",
        channel="HOTLINE",
        hotline="12365",
        urgency="CRITICAL",
        category="SPECIAL_EQUIPMENT",
        received_at="2024-12-31T23:30:00+08:00",
        events=[
            event("RT-1-a", "CASE_FILED", "2025-01-03T10:00:00+08:00", {"case_no": "广市监立〔2025〕1号"}),
            event("RT-1-b", "EXTENDED", "2025-01-02T10:00:00+08:00", {"working_days": 5}, "510802"),
            event("RT-1-c", "CALLBACK", "2025-01-04T10:00:00Z", {"satisfaction": "BASICALLY_SATISFIED"}),
        ],
    )
    result = await ingest(db, [raw])
    assert (result.stored, result.rejected, result.inserted) == (1, [], 1)
    c, p, evs = await stored(db, "RT-1")
    assert (c.kind, c.channel, c.hotline, c.urgency, c.category) == (
        "REPORT", "HOTLINE", "12365", "CRITICAL", "SPECIAL_EQUIPMENT",
    )
    assert c.received_at == datetime(2024, 12, 31, 15, 30, tzinfo=UTC)
    assert c.received_day == date(2024, 12, 31)  # Asia/Shanghai calendar day
    assert c.handling_unit == "510802001"
    assert (c.u1, c.u2, c.u3, c.u4, c.u5) == ("100000", "510000", "510800", "510802", "510802001")
    assert c.region_code == "510802"
    assert (c.respondent_uscc, c.respondent_name) == (USCC, "广元某某餐饮有限公司")
    assert c.real_name is True
    assert c.summary == "外卖餐品变质"
    assert cents_to_money(c.amount_involved_cents) == "1299.00"
    assert cents_to_money(c.recovered_amount_cents) == "100.50"
    assert (p.name, p.phone) == ("张三丰", "13812345678")
    # Events in `at` order, whatever order they came in.
    assert [e.id for e in evs] == ["RT-1-b", "RT-1-a", "RT-1-c"]
    assert evs[0].data == {"working_days": 5} and evs[0].unit == "510802"
    assert evs[1].data == {"case_no": "广市监立〔2025〕1号"}
    assert evs[2].at == datetime(2025, 1, 4, 10, 0, tzinfo=UTC)


async def test_same_record_twice_changes_nothing(db: Database) -> None:
    await load_units(db.sessionmaker)
    await ingest(db, [record("ID-1")])
    before = await stored(db, "ID-1")
    again = await ingest(db, [record("ID-1")])
    assert (again.stored, again.inserted, again.updated, again.unchanged) == (1, 0, 0, 1)
    after = await stored(db, "ID-1")
    assert after[0].updated_at == before[0].updated_at
    assert [(e.id, e.seq) for e in after[2]] == [(e.id, e.seq) for e in before[2]]


async def test_update_replaces_fields_and_merges_events(db: Database) -> None:
    await load_units(db.sessionmaker)
    await ingest(db, [record("UP-1")])
    newer = record(
        "UP-1",
        summary="更新后的描述",
        complainant={"name": "李四", "phone": None, "real_name": False},
        recovered_amount=None,
        # e1 is left out (merge keeps it), e2 changes, e3 is new
        events=[
            event("UP-1-e2", "ACCEPTED", "2024-03-04T09:00:00+08:00", unit="510802002"),
            event("UP-1-e3", "MEDIATION_SUCCEEDED", "2024-03-10T09:00:00+08:00"),
        ],
    )
    result = await ingest(db, [newer])
    assert (result.updated, result.inserted) == (1, 0)
    c, p, evs = await stored(db, "UP-1")
    assert c.summary == "更新后的描述" and c.real_name is False and c.recovered_amount_cents is None
    assert (p.name, p.phone) == ("李四", None)
    assert [e.id for e in evs] == ["UP-1-e1", "UP-1-e2", "UP-1-e3"]
    assert [e.seq for e in evs] == [0, 1, 2]
    assert evs[1].unit == "510802002"


async def test_late_event_is_placed_by_time_and_ties_keep_arrival_order(db: Database) -> None:
    await load_units(db.sessionmaker)
    t = "2024-03-05T09:00:00+08:00"
    first = [event("a", "ACCEPTED", t), event("b", "REPLIED", "2024-03-09T09:00:00Z")]
    await ingest(db, [record("ORD-1", events=first)])
    # An earlier event arrives later; one more at the same instant as `a` comes after it.
    later = [event("early", "DISPATCHED", "2024-03-01T11:00:00+08:00", {"to": "510802"}), event("tie", "CLOSED", t)]
    await ingest(db, [record("ORD-1", events=later)])
    _, _, evs = await stored(db, "ORD-1")
    assert [e.id for e in evs] == ["early", "a", "tie", "b"]


async def test_event_seen_twice_is_stored_once(db: Database) -> None:
    await load_units(db.sessionmaker)
    await ingest(db, [record("EV-1", events=[event("shared", "ACCEPTED", "2024-03-02T10:00:00+08:00")])])
    await ingest(db, [record("EV-2", events=[event("shared", "ACCEPTED", "2024-03-02T10:00:00+08:00")])])
    async with db.sessionmaker() as session:
        owners = (await session.execute(select(Event.complaint_id).where(Event.id == "shared"))).scalars().all()
    assert owners == ["EV-1"]


async def test_same_id_twice_in_one_batch(db: Database) -> None:
    await load_units(db.sessionmaker)
    first = record("DUP-1", summary="first", events=[event("d1", "ACCEPTED", "2024-03-02T10:00:00+08:00")])
    second = record("DUP-1", summary="second", events=[event("d2", "CLOSED", "2024-03-03T10:00:00+08:00")])
    result = await ingest(db, [first, second])
    assert result.stored == 2 and result.rejected == []
    c, _, evs = await stored(db, "DUP-1")
    assert c.summary == "second" and [e.id for e in evs] == ["d1", "d2"]


async def test_two_versions_in_one_batch_keep_every_event(db: Database) -> None:
    """The later version equals what is stored, but the earlier one brought an event: it must not be lost."""
    await load_units(db.sessionmaker)
    await ingest(db, [record("TWO-1")])
    with_new_event = record("TWO-1", events=[*record("TWO-1")["events"],
                                             event("TWO-1-e3", "CLOSED", "2024-03-09T09:00:00+08:00")])
    result = await ingest(db, [with_new_event, record("TWO-1")])
    assert result.stored == 2
    _, _, evs = await stored(db, "TWO-1")
    assert [e.id for e in evs] == ["TWO-1-e1", "TWO-1-e2", "TWO-1-e3"]


async def test_bad_items_rejected_with_index_and_good_ones_kept(db: Database) -> None:
    await load_units(db.sessionmaker)
    raws = [record("OK-1"), record("BAD-1", kind="X"), "not an object", record("BAD-2", handling_unit="510999"),
            record("OK-2")]
    result = await ingest(db, raws)
    assert result.stored == 2
    assert [(r.index, r.id) for r in result.rejected] == [(1, "BAD-1"), (2, None), (3, "BAD-2")]
    assert "kind:" in result.rejected[0].reason
    assert "handling_unit: unknown unit code 510999" in result.rejected[2].reason
    async with db.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Complaint)) == 2


async def test_many_records_in_one_batch(db: Database) -> None:
    await load_units(db.sessionmaker)
    raws = [record(f"M-{i}", events=[event(f"M-{i}-e{j}", "ACCEPTED", f"2024-03-0{j + 1}T10:00:00+08:00")
                                     for j in range(5)]) for i in range(1200)]
    result = await ingest(db, raws)
    assert result.stored == 1200
    async with db.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Event)) == 6000
