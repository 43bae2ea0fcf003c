"""The fast path (new records by COPY, facts and flags from memory, decoding in worker processes) stores
exactly what the per-record path (`upsert_records`) stores, on both databases: the same rows, KPI facts,
flags, outbox items and early-warning alerts, batch after batch, through new records, updates, merges,
duplicate ids and event ids within a batch and across records, surges crossing their thresholds, and bad
records beside good ones."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from connectors.simulators import generate_records, sample_units_csv
from gateway.core.db import transaction
from gateway.ingest import store
from gateway.ingest.store import IngestResult, ingest_raw
from tests.conftest import BACKENDS, Database, open_database
from tests.factories import USCC, event, load_units, record

# Per table: the columns compared and the order of rows. Instants the store stamps with "now" are left out;
# escalated_at only as whether it is set.
TABLES = {
    "complaints": ("id, kind, channel, hotline, urgency, category, received_at, received_day, handling_unit, u1, u2,"
                   " u3, u4, u5, region_code, respondent_uscc, respondent_name, real_name, summary,"
                   " amount_involved_cents, recovered_amount_cents, content_hash", "id"),
    "complainants": ("complaint_id, name, phone", "complaint_id"),
    "events": ("id, complaint_id, seq, type, at, unit, data", "id"),
    "kpi_record_facts": ("*", "complaint_id"),
    "kpi_obligation_facts": ("*", "complaint_id, obligation, step"),
    "kpi_callback_facts": ("*", "complaint_id, step"),
    "complaint_flags": ("flag_id, reason, uscc, severity, complaint_ids, window_start, window_end, issued_by, i1, i2,"
                        " i3, i4, i5, escalated_at IS NOT NULL", "flag_id"),
    "outbox": ("system, key, payload, state, attempts", "system, key"),
    "early_warnings": ("alert_id, unit_code, a1, a2, a3, category, day, count, baseline, threshold", "alert_id"),
}
STAMPED = ("issued_at", "reported_at")  # payload fields that carry "now"


# What the dropped foreign keys guarded (migration 0015), held by the store itself: each must find nothing.
ORPHANS = {
    "events without their record": "SELECT e.id FROM events e LEFT JOIN complaints c ON c.id = e.complaint_id"
                                   " WHERE c.id IS NULL",
    "complainants without their record": "SELECT p.complaint_id FROM complainants p LEFT JOIN complaints c"
                                         " ON c.id = p.complaint_id WHERE c.id IS NULL",
    "records without their complainant": "SELECT c.id FROM complaints c LEFT JOIN complainants p"
                                         " ON p.complaint_id = c.id WHERE p.complaint_id IS NULL",
    "records of an unknown unit": "SELECT c.id FROM complaints c LEFT JOIN org_units u ON u.code = c.handling_unit"
                                  " WHERE u.code IS NULL",
}


async def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every compared table's rows; and a check that nothing is orphaned (ORPHANS)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with db.sessionmaker() as session:
        for what, query in ORPHANS.items():
            assert (await session.execute(text(query))).all() == [], what
        for table, (columns, order) in TABLES.items():
            rows = (await session.execute(text(f"SELECT {columns} FROM {table} ORDER BY {order}"))).all()
            out[table] = [tuple(_plain(v) for v in row) for row in rows]
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            value = json.loads(value)
        except ValueError:
            return value
    if isinstance(value, dict):
        return json.dumps({k: v for k, v in value.items() if k not in STAMPED}, sort_keys=True)
    if isinstance(value, list):
        return json.dumps(value)
    return value


@pytest.fixture(params=BACKENDS)
async def twins(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Database, Database]]:
    """Two fresh databases of one backend: the first stores record by record, the second by the fast path."""
    async with open_database(request.param, tmp_path / "a.db") as slow, open_database(
        request.param, tmp_path / "b.db"
    ) as fast:
        for db in (slow, fast):
            await load_units(db.sessionmaker, sample_units_csv())
        yield slow, fast


async def both(twins: tuple[Database, Database], batch: list[Any]) -> IngestResult:
    results = []
    for db, per_record in zip(twins, (True, False), strict=True):
        async with transaction(db.sessionmaker) as session:
            results.append(await ingest_raw(session, copy.deepcopy(batch), per_record=per_record))
    slow, fast = results
    assert (fast.stored, fast.inserted, fast.updated, fast.unchanged) == (
        slow.stored, slow.inserted, slow.updated, slow.unchanged
    )
    assert fast.rejected == slow.rejected
    return fast


def day_records(prefix: str, start: date, days: int, per_day: int, **fields: Any) -> list[dict[str, Any]]:
    """`per_day` records a day for `days` days in one county (510802) and category: early warning's input."""
    out = []
    for d in range(days):
        for i in range(per_day):
            rid = f"{prefix}-{d}-{i}"
            out.append(record(rid, received_at=f"{start + timedelta(days=d)}T1{i % 10}:00:00+08:00", events=[],
                              respondent=None, **fields))
    return out


@pytest.mark.parametrize("per_record_batch", [store.PER_RECORD_BATCH, 7], ids=["whole", "slices-of-7"])
async def test_batches_store_the_same_rows_facts_flags_and_alerts(
    twins: tuple[Database, Database], per_record_batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`per_record_batch` 7: the per-record path takes its records a few at a time (copies of one id
    together), as it does with a bulk load's thousands, and stores the same."""
    monkeypatch.setattr(store, "PER_RECORD_BATCH", per_record_batch)
    world = generate_records(300, seed=5, days=60)
    extended = record("X-EXT", kind="REPORT", channel="WEB", hotline=None, events=[
        event("X-EXT-e1", "EXTENDED", "2024-03-10T10:00:00+08:00", {"working_days": 10}),
        event("X-EXT-e2", "EXTENDED", "2024-03-12T10:00:00+08:00", {"working_days": 10}),
        event("X-EXT-e3", "CASE_FILED", "2024-04-20T10:00:00+08:00", {"case_no": "X-1"}),
        event("X-EXT-e4", "REPLIED", "2024-04-22T10:00:00+08:00"),
    ])
    critical = record("X-CRIT", urgency="CRITICAL", category="FOOD")
    surge = [record(f"X-SURGE-{i}", received_at=f"2024-05-0{i + 1}T10:00:00+08:00") for i in range(4)]
    history = day_records("X-DAY", date(2024, 1, 1), 35, 1, category="COSMETICS")
    first = await both(twins, [*world[:200], extended, critical, *surge, *history])
    assert first.inserted == 241 and not first.rejected

    changed = copy.deepcopy(world[:20])
    for i, rec in enumerate(changed):
        rec["summary"] = f"更新 {i}"
        rec["events"] = rec["events"][1:] + [event(f"{rec['id']}-late", "CALLBACK", "2024-08-01T10:00:00+08:00",
                                                   {"satisfaction": "SATISFIED"})]
    twice = [record("X-TWICE", summary="first", events=[event("X-TWICE-a", "ACCEPTED", "2024-03-02T10:00:00+08:00")]),
             record("X-TWICE", summary="second", events=[event("X-TWICE-b", "CLOSED", "2024-03-03T10:00:00+08:00")])]
    stolen = record("X-STOLEN", events=[event("X-CRIT-e1", "DISPATCHED", "2024-03-01T10:00:00+08:00",
                                              {"to": "510802001"})])  # an event id another record owns
    shared = [record(f"X-SHARED-{i}", events=[event("X-SHARED-e", "ACCEPTED", "2024-03-02T10:00:00+08:00")])
              for i in range(2)]  # one event id in two new records of the batch
    spike = day_records("X-SPIKE", date(2024, 2, 5), 1, 12, category="COSMETICS")
    more_surge = [record(f"X-SURGE-{i}", received_at="2024-05-20T10:00:00+08:00") for i in range(4, 11)]
    bad = [record("X-BAD", kind="GOSSIP"), {"id": "X-EMPTY"}, "not an object",
           record("X-UNIT", handling_unit="999999")]
    second = await both(twins, [
        *changed, *world[20:40], *world[200:], *twice, stolen, *shared, *spike, *more_surge, *bad,
        record("X-CRIT", urgency="CRITICAL", category="FOOD", summary="again, changed"),
    ])
    assert second.updated == 21 and second.unchanged == 20 and len(second.rejected) == 4

    slow, fast = twins
    expected, got = await snapshot(slow), await snapshot(fast)
    assert expected["early_warnings"], "the spike raises an alert: the comparison covers alerts"
    assert any(row[1] == "COMPLAINT_SURGE" and row[3] == "HIGH" for row in expected["complaint_flags"])
    assert any(row[1] == "CASE_FILED_FROM_REPORT" for row in expected["complaint_flags"])
    for table in TABLES:
        assert got[table] == expected[table], table


async def test_new_records_take_the_fast_path(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a vacuous comparison: a batch of new records never reaches the per-record path."""
    await load_units(db.sessionmaker, sample_units_csv())
    seen: list[int] = []
    upsert = store.upsert_records

    async def counting(session: Any, records: Any, units: Any, **options: Any) -> Any:
        seen.append(len(records))
        return await upsert(session, records, units, **options)

    monkeypatch.setattr(store, "upsert_records", counting)
    batch = generate_records(50, seed=9)
    async with transaction(db.sessionmaker) as session:
        assert (await ingest_raw(session, batch)).inserted == 50
    assert seen == []
    batch[0]["summary"] = "changed"
    async with transaction(db.sessionmaker) as session:
        result = await ingest_raw(session, batch)
    assert (result.updated, result.unchanged, seen) == (1, 49, [1])


def gateway(db: Database, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True, env=db.env(),
                          timeout=180)


async def test_import_in_worker_processes_stores_what_one_process_stores(
    twins: tuple[Database, Database], tmp_path: Path
) -> None:
    """`gateway import --workers 2` (forked decoders, blocks of lines) against `--workers 0`: the same rows,
    the same rejected lines, the same rejects file and exit code; transactions of a few blocks, two stored at
    once (PostgreSQL), a record's later copy in another transaction than its first."""
    records = generate_records(400, seed=3)
    later = [dict(r, summary=f"第二版 {r['id']}") for r in records[5:8]]  # copies of three records, far below
    lines = [json.dumps(r, ensure_ascii=False) for r in [*records[:350], *later, *records[350:]]]
    lines[17] = "{not json"
    lines[230] = json.dumps(record("BAD-W", urgency="SOON"))
    lines.insert(300, "")
    data = tmp_path / "records.jsonl"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    outcomes = []
    for db, workers, writers in zip(twins, ("0", "2"), ("1", "2" if twins[1].backend == "postgresql" else "1"),
                                    strict=True):
        rejects = tmp_path / f"rejects-{workers}.jsonl"
        done = gateway(db, "import", str(data), "--quiet", "--workers", workers, "--rejects", str(rejects),
                       "--block-size", "20000", "--records-per-transaction", "50", "--writers", writers)
        # about 20 records a block: many blocks, both workers busy, stored three to a transaction
        outcomes.append((done.returncode, done.stdout, rejects.read_text(encoding="utf-8"),
                         [x for x in done.stderr.splitlines() if x.startswith("line ")]))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == 1 and "stored 401" in outcomes[0][1] and len(outcomes[0][3]) == 2
    assert "updated 3" in outcomes[0][1]
    assert await snapshot(twins[0]) == await snapshot(twins[1])
    async with twins[1].sessionmaker() as session:  # the later copies won, as in the file
        summaries = (await session.execute(text("SELECT summary FROM complaints WHERE id IN (:a, :b, :c)"), {
            "a": records[5]["id"], "b": records[6]["id"], "c": records[7]["id"]})).scalars().all()
    assert sorted(summaries) == sorted(f"第二版 {r['id']}" for r in records[5:8])


def test_rejects_match_record_by_record(tmp_path: Path) -> None:
    """The same bad record gets the same reason through the fast decoder as through `validate_record`."""
    from gateway.complaints.records import validate_record
    from gateway.ingest.pipeline import Decoding, decode_items
    from gateway.reports.facts import configured
    from gateway.units.tree import Unit, UnitIndex

    units = UnitIndex({"510802001": Unit("510802001", "", 5, "510802", ("100000", "510000", "510800", "510802",
                                                                         "510802001"))})
    bad = [record("B1", kind="GOSSIP"), record("B2", respondent={"uscc": USCC[:-1] + "X", "name": "x"}),
           record("B3", events=[event("e", "CALLBACK", "2024-03-01T10:00:00+08:00", {"satisfaction": "MEH"})]),
           record("B4", received_at="2024-03-01 10:00:00+08:00"), record("B5", handling_unit="510104001"), [1]]
    chunk = decode_items(Decoding(units, configured(), False), bad)
    expected = []
    for i, raw in enumerate(bad):
        with pytest.raises(ValueError) as info:
            validate_record(raw, units)
        expected.append((i, raw.get("id") if isinstance(raw, dict) else None, str(info.value)))
    assert chunk.rejected == expected and not chunk.metas
