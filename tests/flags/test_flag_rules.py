"""The three flag rules and incidents, on SQLite and PostgreSQL: boundaries, idempotency, arrival order,
escalation, and that flags commit or roll back with the data that raised them."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from gateway.complaints.models import Complaint
from gateway.core.db import transaction
from gateway.flags.models import CREDIT, EMERGENCY, OutboxItem, SurgeCount
from gateway.flags.rules import CASE_FILED, CRITICAL_SAFETY, SURGE, SURGE_KINDS, SURGE_MEDIUM, flag_id, month_of
from gateway.flags.store import list_flags
from gateway.ingest.store import ingest_raw
from gateway.units.jurisdiction import Jurisdiction
from tests.conftest import Database
from tests.flags.support import OTHER_USCC, USCC, all_flags, all_outbox, case_filed, rec, store


def march(n: int, *, day: int = 10, prefix: str = "M") -> list[dict[str, object]]:
    return [rec(f"{prefix}{i:03d}", f"2024-03-{day:02d}T10:{i % 60:02d}:00+08:00") for i in range(n)]


# ---------------------------------------------------------------------------------------------- surge


async def test_four_records_in_a_month_raise_nothing_the_fifth_raises_medium(world: Database) -> None:
    await store(world, march(4))
    assert await all_flags(world) == []
    await store(world, [rec("M900", "2024-03-28T08:00:00+08:00")])
    [flag] = await all_flags(world)
    assert (flag.reason, flag.uscc, flag.severity) == (SURGE, USCC, "MEDIUM")
    assert flag.flag_id == flag_id(SURGE, USCC, "2024-03")
    assert flag.complaint_ids == sorted(["M000", "M001", "M002", "M003", "M900"])
    assert flag.window_start == datetime(2024, 2, 29, 16, tzinfo=UTC)  # 2024-03-01T00:00+08:00
    assert flag.window_end == datetime(2024, 3, 31, 16, tzinfo=UTC)
    [item] = await all_outbox(world, CREDIT)
    assert item.key == flag.flag_id and item.state == "PENDING"
    assert item.payload["severity"] == "MEDIUM"
    assert item.payload["window_start"] == "2024-03-01T00:00:00+08:00"


async def test_month_boundaries_are_taken_in_asia_shanghai(world: Database) -> None:
    # 2024-03-31T16:30Z is still March in UTC but already April 1st in Shanghai: it must not count for March.
    await store(world, march(4) + [rec("B1", "2024-03-31T16:30:00Z"), rec("B2", "2024-04-01T00:00:00+08:00")])
    assert await all_flags(world) == []
    # One second before midnight in Shanghai is March: the fifth March record.
    await store(world, [rec("B3", "2024-03-31T23:59:59+08:00")])
    [flag] = await all_flags(world)
    assert flag.flag_id == flag_id(SURGE, USCC, "2024-03") and "B3" in flag.complaint_ids
    assert "B1" not in flag.complaint_ids


async def test_only_complaints_and_reports_of_the_same_enterprise_count(world: Database) -> None:
    raws = march(3)
    raws.append(rec("R1", "2024-03-11T09:00:00+08:00", kind="REPORT"))
    raws.append(rec("I1", "2024-03-11T09:00:00+08:00", kind="INQUIRY"))
    raws.append(rec("S1", "2024-03-11T09:00:00+08:00", kind="SUGGESTION"))
    raws.append(rec("O1", "2024-03-11T09:00:00+08:00", uscc=OTHER_USCC))
    raws.append(rec("N1", "2024-03-11T09:00:00+08:00", uscc=None))
    await store(world, raws)
    assert await all_flags(world) == []  # 3 complaints + 1 report
    await store(world, [rec("R2", "2024-03-12T09:00:00+08:00", kind="REPORT")])
    [flag] = await all_flags(world)
    assert flag.complaint_ids == ["M000", "M001", "M002", "R1", "R2"]


async def _surge_counts(db: Database) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], list[str]]]:
    """(the stored surge counts, the records of each (USCC, month) as the rule counts them)."""
    async with db.sessionmaker() as session:
        stored = {(u, m): n for u, m, n in (await session.execute(select(SurgeCount.uscc, SurgeCount.month,
                                                                          SurgeCount.records))).all()}
        rows = (await session.execute(select(Complaint.id, Complaint.respondent_uscc, Complaint.received_day)
                                      .where(Complaint.kind.in_(SURGE_KINDS)))).all()
    records: dict[tuple[str, str], list[str]] = {}
    for rid, uscc, day in rows:
        if uscc:
            records.setdefault((uscc, month_of(day)), []).append(rid)
    return stored, records


async def test_a_record_moved_away_is_not_counted_when_the_next_one_arrives(world: Database) -> None:
    await store(world, march(4))
    await store(world, [rec("M001", "2024-03-10T10:01:00+08:00", uscc=OTHER_USCC)])  # to another enterprise
    await store(world, [rec("M900", "2024-03-28T08:00:00+08:00")])  # 4 of USCC's records, not 5
    assert await all_flags(world) == []
    stored, records = await _surge_counts(world)
    assert stored[(USCC, "2024-03")] == len(records[(USCC, "2024-03")]) == 4  # counted, and mended
    await store(world, [rec("M001", "2024-03-10T10:01:00+08:00")])  # back: the fifth
    [flag] = await all_flags(world)
    assert flag.flag_id == flag_id(SURGE, USCC, "2024-03") and "M001" in flag.complaint_ids


@pytest.mark.parametrize("seed", [1, 2])
async def test_surge_counts_never_fall_behind_and_every_surge_is_found(world: Database, seed: int) -> None:
    """Random new records and changes of enterprise, month and kind, in batches: after each, no stored count
    is below the records it counts, and every (USCC, month) with five or more records has its flag."""
    rng = random.Random(seed)
    usccs, days = [USCC, OTHER_USCC], ["2024-03-30T10:00:00+08:00", "2024-04-01T10:00:00+08:00"]
    known: list[str] = []
    for step in range(12):
        batch = []
        for i in range(rng.randrange(1, 6)):
            rid = rng.choice(known) if known and rng.random() < 0.4 else f"R{step}-{i}"
            known.append(rid)
            batch.append(rec(rid, rng.choice(days), uscc=rng.choice(usccs),
                             kind=rng.choice(["COMPLAINT", "COMPLAINT", "REPORT", "INQUIRY"])))
        await store(world, list({r["id"]: r for r in batch}.values()))
        stored, records = await _surge_counts(world)
        assert all(stored.get(key, 0) >= len(ids) for key, ids in records.items()), (stored, records)
        flags = {f.flag_id: f for f in await all_flags(world)}
        for (uscc, month), ids in records.items():
            if len(ids) >= SURGE_MEDIUM:
                assert set(ids) <= set(flags[flag_id(SURGE, uscc, month)].complaint_ids)


async def test_surge_rises_to_high_at_ten_under_the_same_flag_id(world: Database) -> None:
    await store(world, march(9))
    [flag] = await all_flags(world)
    assert flag.severity == "MEDIUM" and flag.escalated_at is None
    await store(world, [rec("M999", "2024-03-30T10:00:00+08:00")])
    [flag] = await all_flags(world)
    assert flag.severity == "HIGH" and flag.escalated_at is not None and len(flag.complaint_ids) == 10
    [item] = await all_outbox(world, CREDIT)
    # Not yet attempted: the payload still follows the finding.
    assert item.payload["severity"] == "HIGH" and len(item.payload["complaint_ids"]) == 10


async def test_escalation_after_the_first_delivery_attempt_keeps_the_frozen_payload(world: Database) -> None:
    await store(world, march(5))
    async with transaction(world.sessionmaker) as session:  # what a dispatcher's claim does
        await session.execute(update(OutboxItem).values(first_attempt_at=datetime.now(UTC), state="DELIVERED"))
    await store(world, march(6, day=20, prefix="L"))
    [flag] = await all_flags(world)
    assert flag.severity == "HIGH" and flag.escalated_at is not None and len(flag.complaint_ids) == 11
    [item] = await all_outbox(world, CREDIT)
    assert item.payload["severity"] == "MEDIUM" and len(item.payload["complaint_ids"]) == 5
    async with world.sessionmaker() as session:
        [view] = (await list_flags(session)).items
    assert (view.severity, view.delivered_severity, view.delivery_state) == ("HIGH", "MEDIUM", "DELIVERED")


async def test_a_record_leaving_the_month_does_not_withdraw_the_flag(world: Database) -> None:
    await store(world, march(5))
    await store(world, [rec("M000", "2024-04-02T10:00:00+08:00")])  # the same record, moved to April
    [flag] = await all_flags(world)
    assert flag.severity == "MEDIUM" and "M000" in flag.complaint_ids


# ---------------------------------------------------------------------------------------------- idempotency, order


async def test_same_data_twice_and_in_any_order_gives_the_same_flags(world: Database) -> None:
    raws = [
        *march(11),
        rec("RP1", "2024-03-15T10:00:00+08:00", kind="REPORT", events=[case_filed("RP1", "2024-03-20T10:00:00+08:00")]),
        rec("CR1", "2024-03-16T10:00:00+08:00", urgency="CRITICAL", category="FOOD", uscc=OTHER_USCC),
    ]
    await store(world, raws)
    first = [(f.flag_id, f.reason, f.severity, f.complaint_ids) for f in await all_flags(world)]
    first_outbox = [(o.system, o.key) for o in await all_outbox(world)]
    assert {r for _, r, _, _ in first} == {SURGE, CASE_FILED, CRITICAL_SAFETY}
    await store(world, raws)  # the same again
    await store(world, list(reversed(raws)))  # and reversed
    backwards = raws[::-1]
    for i in range(0, len(backwards), 3):  # and one small batch after another
        await store(world, backwards[i : i + 3])
    assert [(f.flag_id, f.reason, f.severity, f.complaint_ids) for f in await all_flags(world)] == first
    assert [(o.system, o.key) for o in await all_outbox(world)] == first_outbox


@pytest.mark.parametrize("order", ["forward", "backward", "interleaved"])
async def test_flags_do_not_depend_on_arrival_order(world: Database, order: str) -> None:
    raws = march(12) + [rec(f"A{i}", f"2024-04-0{i + 1}T10:00:00+08:00") for i in range(6)]
    arranged = {"forward": raws, "backward": raws[::-1], "interleaved": raws[::2] + raws[1::2]}[order]
    for one in arranged:
        await store(world, [one])
    got = {(f.flag_id, f.severity, len(f.complaint_ids)) for f in await all_flags(world)}
    assert got == {(flag_id(SURGE, USCC, "2024-03"), "HIGH", 12), (flag_id(SURGE, USCC, "2024-04"), "MEDIUM", 6)}
    assert len(await all_outbox(world, CREDIT)) == 2


# ---------------------------------------------------------------------------------------------- case filed


async def test_report_gets_flag_when_case_filed_arrives_later_and_out_of_order(world: Database) -> None:
    verified = {"id": "RP1-v", "type": "VERIFIED", "at": "2024-03-18T10:00:00+08:00", "unit": None, "data": {}}
    await store(world, [rec("RP1", "2024-03-15T10:00:00+08:00", kind="REPORT", events=[verified])])
    assert await all_flags(world) == []
    # A CASE_FILED dated later arrives first, then an earlier one: the window ends at the earliest.
    await store(world, [rec("RP1", "2024-03-15T10:00:00+08:00", kind="REPORT",
                            events=[case_filed("RP1", "2024-03-25T10:00:00+08:00", 2)])])
    await store(world, [rec("RP1", "2024-03-15T10:00:00+08:00", kind="REPORT",
                            events=[case_filed("RP1", "2024-03-20T10:00:00+08:00", 1)])])
    [flag] = await all_flags(world)
    assert (flag.reason, flag.severity, flag.complaint_ids) == (CASE_FILED, "HIGH", ["RP1"])
    assert flag.flag_id == flag_id(CASE_FILED, USCC, "RP1")
    assert flag.window_end == datetime(2024, 3, 20, 2, tzinfo=UTC)
    [item] = await all_outbox(world, CREDIT)
    assert item.payload["window_end"] == "2024-03-20T10:00:00+08:00"


async def test_case_filed_on_a_complaint_or_without_uscc_raises_nothing(world: Database) -> None:
    await store(world, [
        rec("C1", "2024-03-15T10:00:00+08:00", events=[case_filed("C1", "2024-03-20T10:00:00+08:00")]),
        rec("RP2", "2024-03-15T10:00:00+08:00", kind="REPORT", uscc=None,
            events=[case_filed("RP2", "2024-03-20T10:00:00+08:00")]),
    ])
    assert await all_flags(world) == []


# ---------------------------------------------------------------------------------------------- critical


@pytest.mark.parametrize("category", ["FOOD", "DRUG", "MEDICAL_DEVICE", "SPECIAL_EQUIPMENT"])
async def test_critical_safety_record_raises_flag_and_incident(world: Database, category: str) -> None:
    await store(world, [rec("CR1", "2024-03-16T10:00:00+08:00", urgency="CRITICAL", category=category)])
    [flag] = await all_flags(world)
    assert (flag.reason, flag.severity) == (CRITICAL_SAFETY, "HIGH")
    assert flag.flag_id == flag_id(CRITICAL_SAFETY, USCC, "CR1")
    assert flag.issued_by == "510802001"
    [incident] = await all_outbox(world, EMERGENCY)
    assert incident.key == "CR1"
    assert incident.payload["complaint_ids"] == ["CR1"] and incident.payload["unit_code"] == "510802001"
    assert incident.payload["category"] == category and incident.payload["urgency"] == "CRITICAL"


async def test_critical_outside_safety_or_without_uscc_is_an_incident_but_no_flag(world: Database) -> None:
    await store(world, [
        rec("CR2", "2024-03-16T10:00:00+08:00", urgency="CRITICAL", category="COSMETICS"),
        rec("CR3", "2024-03-16T10:00:00+08:00", urgency="CRITICAL", category="FOOD", uscc=None),
        rec("U1", "2024-03-16T10:00:00+08:00", urgency="URGENT", category="FOOD"),
    ])
    assert await all_flags(world) == []
    assert [o.key for o in await all_outbox(world, EMERGENCY)] == ["CR2", "CR3"]


async def test_a_record_that_becomes_critical_later_is_flagged_then_once(world: Database) -> None:
    await store(world, [rec("CR4", "2024-03-16T10:00:00+08:00", urgency="URGENT", category="DRUG")])
    assert await all_flags(world) == [] and await all_outbox(world) == []
    for _ in range(2):
        await store(world, [rec("CR4", "2024-03-16T10:00:00+08:00", urgency="CRITICAL", category="DRUG")])
    assert [f.reason for f in await all_flags(world)] == [CRITICAL_SAFETY]
    assert [(o.system, o.key) for o in await all_outbox(world)] == [(CREDIT, flag_id(CRITICAL_SAFETY, USCC, "CR4")),
                                                                   (EMERGENCY, "CR4")]


# ---------------------------------------------------------------------------------------------- transactions


async def test_flags_roll_back_with_the_records_that_raised_them(world: Database) -> None:
    with pytest.raises(RuntimeError):
        async with transaction(world.sessionmaker) as session:
            await ingest_raw(session, march(5) + [rec("CRX", "2024-03-16T10:00:00+08:00", urgency="CRITICAL",
                                                      category="FOOD")])
            assert len((await session.execute(select(OutboxItem))).all()) == 3
            raise RuntimeError("the batch fails after the hook ran")
    assert await all_flags(world) == [] and await all_outbox(world) == []


async def test_concurrent_fifth_records_still_raise_the_surge(world: Database) -> None:
    """Two transactions each add one record to 3 stored ones. Without a lock each would count 4; PostgreSQL
    must serialise them on (USCC, month). (SQLite serialises writers anyway.)"""
    await store(world, march(3))
    entered = asyncio.Event()

    async def add(rid: str, hold: bool) -> None:
        async with transaction(world.sessionmaker) as session:
            await ingest_raw(session, [rec(rid, "2024-03-21T10:00:00+08:00")])
            if hold:
                entered.set()
                await asyncio.sleep(0.5)  # the other transaction runs its hook meanwhile

    if world.backend == "sqlite":
        await asyncio.gather(add("X1", False), add("X2", False))
    else:
        first = asyncio.create_task(add("X1", True))
        await entered.wait()
        await asyncio.gather(first, add("X2", False))
    [flag] = await all_flags(world)
    assert sorted(flag.complaint_ids)[-2:] == ["X1", "X2"] and len(flag.complaint_ids) == 5


# ---------------------------------------------------------------------------------------------- pull API


async def test_list_flags_pages_filters_and_scopes(world: Database) -> None:
    await store(world, [rec(f"CR{i}", "2024-03-16T10:00:00+08:00", urgency="CRITICAL", category="FOOD",
                            kind="INQUIRY", unit="510802001" if i % 2 else "510104001") for i in range(7)])
    async with world.sessionmaker() as session:
        seen, after = [], None
        while True:
            page = await list_flags(session, first=3, after=after)
            seen += [v.flag_id for v in page.items]
            if not page.has_next_page:
                break
            after = page.end_cursor
        assert len(seen) == 7 == len(set(seen))
        assert all(v.delivery_state == "PENDING" and v.delivered_severity is None for v in page.items)
        city = await list_flags(session, jurisdiction=Jurisdiction("510800", 3))  # 广元: only its stations' flags
        assert sorted(v.complaint_ids[0] for v in city.items) == ["CR1", "CR3", "CR5"]
        assert (await list_flags(session, jurisdiction=Jurisdiction("510811", 4))).items == []  # a sibling county
        later = await list_flags(session, since=datetime.now(UTC))
        assert later.items == []
        with pytest.raises(ValueError):
            await list_flags(session, after="not-a-cursor")
        with pytest.raises(ValueError):
            await list_flags(session, first=501)
