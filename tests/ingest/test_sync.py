"""`gateway sync` against the complaint-platform simulator on loopback: full and incremental sync, a record
changed twice, bad records skipped, and resuming after a failure or a SIGKILL between pages without losing
or duplicating anything. Runs on every backend of the `db` fixture."""

from __future__ import annotations

import asyncio
import copy
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from connectors import ComplaintsConnector, ConnectorConfig, UpstreamUnavailable
from connectors.simulators import complaints, generate_records, run_in_thread, sample_units_csv
from gateway.complaints.models import Complaint, Event
from gateway.core.db import transaction
from gateway.core.state import get_state
from gateway.ingest.store import Rejection
from gateway.ingest.sync import CURSOR, NoUnits, SyncReport, run_forever, sync_until_caught_up
from gateway.ingest.units_file import import_units
from tests.conftest import Database

TOKEN = "sync-token"
RECORDS = generate_records(250, seed=11)
BAD = [
    {"id": "BAD-1", "kind": "COMPLAINT"},  # most fields missing
    {**RECORDS[0], "id": "BAD-2", "handling_unit": "999999"},  # unknown unit
    ["not", "an", "object"],
]


class Platform:
    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=5)

    def put(self, *records: Any) -> None:
        self.http.post("/_sim/records", json={"items": list(records)}).raise_for_status()

    def faults(self, **faults: Any) -> None:
        self.http.post("/_sim/faults", json=faults).raise_for_status()


@pytest.fixture
def platform() -> Iterator[Platform]:
    items = [*RECORDS[:120], *BAD, *RECORDS[120:]]
    with run_in_thread(complaints.create_app(copy.deepcopy(items), token=TOKEN)) as url:
        yield Platform(url)


@pytest.fixture
async def store(db: Database) -> Database:
    async with transaction(db.sessionmaker) as session:
        await import_units(session, sample_units_csv())
    return db


@pytest.fixture
async def connector(platform: Platform) -> Any:
    c = ComplaintsConnector(ConnectorConfig(url=platform.url, token=TOKEN, timeout_s=2, backoff_base_s=0.01))
    yield c
    await c.aclose()


async def counts(db: Database) -> tuple[int, int]:
    async with db.sessionmaker() as s:
        records = (await s.execute(select(func.count()).select_from(Complaint))).scalar_one()
        events = (await s.execute(select(func.count()).select_from(Event))).scalar_one()
    return records, events


async def cursor_of(db: Database) -> str | None:
    async with db.sessionmaker() as s:
        return await get_state(s, CURSOR)


ALL_EVENTS = sum(len(r["events"]) for r in RECORDS)


async def test_full_then_incremental_sync(store: Database, connector: ComplaintsConnector, platform: Platform) -> None:
    rejected: list[Rejection] = []
    report = await sync_until_caught_up(store.sessionmaker, connector, limit=100, on_reject=rejected.append)
    assert report.pages == 3 and report.received == 253 and report.stored == 250
    assert sorted(str(r.id) for r in rejected) == ["BAD-1", "BAD-2", "None"]
    assert await counts(store) == (250, ALL_EVENTS)
    assert await cursor_of(store) == report.cursor

    # Nothing new: one empty page, nothing stored, cursor unchanged.
    again = await sync_until_caught_up(store.sessionmaker, connector, limit=100)
    assert (again.received, again.pages) == (0, 1) and await cursor_of(store) == report.cursor

    # Incremental: two new records and one changed record arrive, and only they.
    new = generate_records(2, seed=99, id_prefix="N")
    changed = copy.deepcopy(RECORDS[5])
    changed["summary"] = "补充说明：商家已承认问题"
    platform.put(*new, changed)
    inc = await sync_until_caught_up(store.sessionmaker, connector, limit=100)
    assert inc.received == 3 and inc.stored == 3
    assert (await counts(store))[0] == 252
    async with store.sessionmaker() as s:
        assert (await s.get(Complaint, RECORDS[5]["id"])).summary == "补充说明：商家已承认问题"  # type: ignore[union-attr]


async def test_record_changed_twice(store: Database, connector: ComplaintsConnector, platform: Platform) -> None:
    await sync_until_caught_up(store.sessionmaker, connector, on_reject=lambda r: None)
    rec = copy.deepcopy(next(r for r in RECORDS if r["kind"] == "COMPLAINT" and len(r["events"]) == 2))
    at = rec["events"][-1]["at"]
    base_events = (await counts(store))[1]

    rec["events"].append({"id": rec["id"] + "-X1", "type": "MEDIATION_FAILED", "at": at, "unit": None,
                          "data": {"reason": "无法联系商家"}})
    platform.put(rec)
    first = await sync_until_caught_up(store.sessionmaker, connector)
    rec["events"].append({"id": rec["id"] + "-X2", "type": "REPLIED", "at": at, "unit": None, "data": {}})
    rec["recovered_amount"] = None
    rec["summary"] = "第二次更新"
    platform.put(rec)
    second = await sync_until_caught_up(store.sessionmaker, connector)
    assert first.received == second.received == 1
    assert (await counts(store))[1] == base_events + 2
    async with store.sessionmaker() as s:
        assert (await s.get(Complaint, rec["id"])).summary == "第二次更新"  # type: ignore[union-attr]

    # Changed twice between two syncs: it comes once, in its latest form.
    rec["summary"] = "第三次"
    platform.put(rec)
    rec["summary"] = "第四次"
    platform.put(rec)
    third = await sync_until_caught_up(store.sessionmaker, connector)
    assert third.received == 1
    async with store.sessionmaker() as s:
        assert (await s.get(Complaint, rec["id"])).summary == "第四次"  # type: ignore[union-attr]


class Crash(Exception):
    pass


async def test_failure_between_pages_resumes_without_loss(store: Database, connector: ComplaintsConnector) -> None:
    def crash_after_second(report: SyncReport) -> None:
        if report.pages == 2:
            raise Crash

    with pytest.raises(Crash):
        await sync_until_caught_up(store.sessionmaker, connector, limit=60, after_page=crash_after_second,
                                   records_per_transaction=1,
                                   on_reject=lambda r: None)
    stored_before = (await counts(store))[0]
    assert 115 <= stored_before <= 120  # two pages of 60 items, a few of them bad
    resumed = await sync_until_caught_up(store.sessionmaker, connector, limit=60, on_reject=lambda r: None)
    assert resumed.received == 253 - 120  # it starts after the second page, not from the beginning
    assert await counts(store) == (250, ALL_EVENTS)


async def test_pages_are_stored_a_few_to_a_transaction_and_a_crash_resumes_after_the_last(
    store: Database, connector: ComplaintsConnector
) -> None:
    seen: list[tuple[int, int]] = []

    def crash_after_second_transaction(report: SyncReport) -> None:
        seen.append((report.pages, report.received))
        if len(seen) == 2:
            raise Crash

    with pytest.raises(Crash):  # pages of 60, two to a transaction (120 records)
        await sync_until_caught_up(store.sessionmaker, connector, limit=60, records_per_transaction=120,
                                   after_page=crash_after_second_transaction, on_reject=lambda r: None)
    assert seen == [(2, 120), (4, 240)]
    assert 235 <= (await counts(store))[0] <= 240
    resumed = await sync_until_caught_up(store.sessionmaker, connector, limit=60, on_reject=lambda r: None)
    assert (resumed.pages, resumed.received) == (1, 253 - 240)
    assert await counts(store) == (250, ALL_EVENTS)


async def test_upstream_outage_keeps_what_was_stored(
    store: Database, connector: ComplaintsConnector, platform: Platform
) -> None:
    platform.faults(script=["ok", "503", "503", "503", "503"])  # page 1 comes, page 2 fails all 4 attempts
    with pytest.raises(UpstreamUnavailable):
        await sync_until_caught_up(store.sessionmaker, connector, limit=100, on_reject=lambda r: None)
    assert (await counts(store))[0] == 100
    resumed = await sync_until_caught_up(store.sessionmaker, connector, limit=100, on_reject=lambda r: None)
    assert resumed.received == 153
    assert await counts(store) == (250, ALL_EVENTS)


async def test_sigkill_mid_sync_then_resume(store: Database, platform: Platform) -> None:
    platform.faults(latency_ms=60)  # ~25 pages of 10: a few seconds, time to kill it in the middle
    env = store.env(
        GATEWAY_COMPLAINTS_URL=platform.url, GATEWAY_COMPLAINTS_TOKEN=TOKEN, GATEWAY_CONNECTOR_TIMEOUT_S="5",
    )
    # Not `-m gateway.cli.base`: that runs the CLI module as __main__, apart from the one extensions register with.
    cmd = [sys.executable, "-c", "import sys; from gateway.cli.main import main; sys.exit(main())",
           "sync", "--once", "--limit", "10", "--records-per-transaction", "10"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=os.getcwd())
    try:
        deadline = time.monotonic() + 60
        while await cursor_of(store) is None:  # wait for the first committed page
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    partial = (await counts(store))[0]
    assert 0 < partial < 250
    platform.faults()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "received" in done.stdout
    assert await counts(store) == (250, ALL_EVENTS)


async def test_no_units_refuses_instead_of_skipping_everything(db: Database, connector: ComplaintsConnector) -> None:
    with pytest.raises(NoUnits):
        await sync_until_caught_up(db.sessionmaker, connector)
    assert await cursor_of(db) is None


async def test_follow_mode_picks_up_new_records(
    store: Database, connector: ComplaintsConnector, platform: Platform
) -> None:
    stop = asyncio.Event()
    follower = asyncio.create_task(run_forever(store.sessionmaker, connector, interval_s=0.05, stop=stop))
    try:
        for _ in range(200):
            if (await counts(store))[0] == 250:
                break
            await asyncio.sleep(0.05)
        platform.put(*generate_records(3, seed=4, id_prefix="F"))
        for _ in range(200):
            if (await counts(store))[0] == 253:
                break
            await asyncio.sleep(0.05)
        assert (await counts(store))[0] == 253
    finally:
        stop.set()
        await asyncio.wait_for(follower, 5)
