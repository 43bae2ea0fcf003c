"""Record versions (records.md 1.1): a copy whose `updated_at` is earlier than the stored one never
replaces the stored fields, whichever way it comes in (import, push, a late sync page); its events still
merge. Equal or later versions, or a version missing on either side, replace as before."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from connectors import ComplaintsConnector, ConnectorConfig
from connectors.simulators import complaints, run_in_thread
from gateway.api.ingest import sign
from gateway.complaints.models import Complainant, Complaint, Event
from gateway.complaints.records import validate_record
from gateway.core.db import transaction
from gateway.core.settings import Settings
from gateway.ingest.store import _replace_fields, content_hash, replaces, upsert_records
from gateway.ingest.sync import sync_until_caught_up
from gateway.units.tree import load_units as load_unit_index
from tests.conftest import Database
from tests.factories import event, load_units, record
from tests.loopback import serve

T1 = "2024-03-05T10:00:00+08:00"
T2 = "2024-03-06T10:00:00+08:00"
T3 = "2024-03-07T10:00:00+08:00"
SECRET = "push-secret-for-version-tests"


def version(rid: str, at: str | None, summary: str, *extra_events: dict[str, Any], **fields: Any) -> dict[str, Any]:
    rec = record(rid, summary=summary, **fields)
    if at is not None:
        rec["updated_at"] = at
    rec["events"] += list(extra_events)
    return rec


async def stored(db: Database, rid: str) -> tuple[str, str | None, list[str]]:
    async with db.sessionmaker() as s:
        summary = (await s.execute(select(Complaint.summary).where(Complaint.id == rid))).scalar_one()
        phone = (await s.execute(select(Complainant.phone).where(Complainant.complaint_id == rid))).scalar_one()
        events = list((await s.execute(
            select(Event.id).where(Event.complaint_id == rid).order_by(Event.seq))).scalars())
    return summary, phone, events


def test_the_rule() -> None:
    a, b = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)
    assert replaces(a, b) and replaces(a, a) and not replaces(b, a)
    assert replaces(None, a) and replaces(a, None) and replaces(None, None)


async def store(db: Database, *raws: dict[str, Any]) -> Any:
    async with transaction(db.sessionmaker) as session:
        units = await load_unit_index(session)
        return await upsert_records(session, [validate_record(r) for r in raws], units)


async def test_stale_copy_keeps_fields_and_merges_events(db: Database) -> None:
    await load_units(db.sessionmaker)
    await store(db, version("V-1", T2, "newer", complainant={"name": "李四", "phone": "13900000002",
                                                              "real_name": True}))
    late = event("V-1-late", "REPLIED", "2024-03-05T09:00:00+08:00", unit="510802001")
    result = await store(db, version("V-1", T1, "older", late))
    assert (result.stale, result.updated, result.unchanged) == (1, 0, 0)
    summary, phone, events = await stored(db, "V-1")
    assert summary == "newer" and phone == "13900000002"
    assert events == ["V-1-e1", "V-1-e2", "V-1-late"]
    # The same stale copy again: nothing changes, and the events stay merged once.
    result = await store(db, version("V-1", T1, "older", late))
    assert result.stale == 1 and result.changed_ids == []
    assert (await stored(db, "V-1"))[2] == ["V-1-e1", "V-1-e2", "V-1-late"]


async def test_stale_copy_does_not_rewrite_a_known_event(db: Database) -> None:
    await load_units(db.sessionmaker)
    newer = version("V-2", T2, "newer")
    newer["events"][1]["at"] = "2024-03-04T11:00:00+08:00"
    await store(db, newer)
    await store(db, version("V-2", T1, "older"))  # its e2 says 09:00
    async with db.sessionmaker() as s:
        at = (await s.execute(select(Event.at).where(Event.id == "V-2-e2"))).scalar_one()
    assert at == datetime(2024, 3, 4, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(("first", "second", "winner"), [
    (T1, T2, "second"),  # later replaces
    (T2, T2, "second"),  # equal replaces
    (None, T1, "second"),  # no stored version
    (T2, None, "second"),  # no incoming version
    (None, None, "second"),
    (T3, T2, "first"),  # earlier is stale
])
async def test_versions_decide_which_fields_stay(db: Database, first: str | None, second: str | None,
                                                 winner: str) -> None:
    await load_units(db.sessionmaker)
    await store(db, version("V-3", first, "first"))
    await store(db, version("V-3", second, "second"))
    assert (await stored(db, "V-3"))[0] == winner
    async with db.sessionmaker() as s:
        got = (await s.execute(select(Complaint.record_updated_at).where(Complaint.id == "V-3"))).scalar_one()
    want = {"first": first, "second": second}[winner]
    assert got == (None if want is None else datetime.fromisoformat(want))


async def test_two_copies_in_one_batch_keep_the_later_fields(db: Database) -> None:
    await load_units(db.sessionmaker)
    a = version("V-4", T2, "newer", event("V-4-a", "REPLIED", "2024-03-05T09:00:00+08:00"))
    b = version("V-4", T1, "older", event("V-4-b", "CLOSED", "2024-03-06T09:00:00+08:00"))
    await store(db, a, b)
    summary, _, events = await stored(db, "V-4")
    assert summary == "newer" and set(events) == {"V-4-e1", "V-4-e2", "V-4-a", "V-4-b"}
    await store(db, b, a)  # the order in the batch does not matter, the versions do
    assert (await stored(db, "V-4"))[0] == "newer"


async def test_the_update_itself_refuses_a_stale_copy(db: Database) -> None:
    """A writer that read the stored version before a newer copy committed: the UPDATE's condition holds
    the line (here the Python check is bypassed on purpose)."""
    await load_units(db.sessionmaker)
    await store(db, version("V-5", T2, "newer"))
    old = validate_record(version("V-5", T1, "older", complainant={"name": "王五", "phone": "13900000005",
                                                                     "real_name": True}))
    async with transaction(db.sessionmaker) as session:
        units = await load_unit_index(session)
        await _replace_fields(session, [(old, content_hash(old))], units, datetime.now(UTC))
    summary, phone, _ = await stored(db, "V-5")
    assert summary == "newer" and phone == "13812345678"


# ------------------------------------------------------------------------------------ real entry points


def gateway(db: Database, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True,
                          env=db.env(), timeout=120)


async def test_import_of_an_older_file_rolls_nothing_back(db: Database, tmp_path: Path) -> None:
    await load_units(db.sessionmaker)
    new, old = tmp_path / "new.jsonl", tmp_path / "old.jsonl"
    new.write_text(json.dumps(version("V-6", T2, "newer")) + "\n" + json.dumps(version("V-7", T1, "b1")) + "\n")
    late = event("V-6-late", "REPLIED", "2024-03-05T09:00:00+08:00")
    old.write_text(json.dumps(version("V-6", T1, "older", late)) + "\n" + json.dumps(version("V-7", T2, "b2")) + "\n")
    assert gateway(db, "import", str(new), "--quiet").returncode == 0
    done = gateway(db, "import", str(old), "--quiet")
    assert done.returncode == 0, done.stderr
    assert "updated 1" in done.stdout and "stale 1" in done.stdout
    assert (await stored(db, "V-6"))[0] == "newer" and "V-6-late" in (await stored(db, "V-6"))[2]
    assert (await stored(db, "V-7"))[0] == "b2"


@pytest.fixture
def gateway_url(db: Database) -> Iterator[str]:
    with serve(Settings(database_url=db.url, ingest_secret=SECRET, jwt_secret="j" * 32,
                        dispatcher=False)) as url:
        yield url


async def push(url: str, items: list[Any], t: int | None = None) -> httpx.Response:
    body = json.dumps({"items": items}).encode()
    sig = sign(SECRET.encode(), body, int(time.time()) if t is None else t)
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(f"{url}/api/v1/ingest/complaints", content=body,
                                 headers={"X-Signature": sig, "Content-Type": "application/json"})


async def test_a_replayed_push_rolls_nothing_back(db: Database, gateway_url: str) -> None:
    await load_units(db.sessionmaker)
    old = [version("V-8", T1, "older")]
    resp = await push(gateway_url, old)
    assert resp.status_code == 200 and resp.json()["stored"] == 1
    resp = await push(gateway_url, [version("V-8", T2, "newer")])
    assert resp.status_code == 200
    # The old push again, freshly signed (inside the tolerance): the version keeps it out.
    resp = await push(gateway_url, old)
    assert resp.status_code == 200
    assert (await stored(db, "V-8"))[0] == "newer"


async def test_a_late_sync_page_rolls_back_no_push(db: Database, gateway_url: str) -> None:
    """The platform pushed version 2; the feed still serves version 1 (with an event not pushed)."""
    await load_units(db.sessionmaker)
    assert (await push(gateway_url, [version("V-9", T2, "pushed")])).status_code == 200
    late = event("V-9-late", "REPLIED", "2024-03-05T09:00:00+08:00")
    with run_in_thread(complaints.create_app([version("V-9", T1, "from the feed", late)], token="t")) as url:
        connector = ComplaintsConnector(ConnectorConfig(url=url, token="t", timeout_s=5))
        try:
            report = await sync_until_caught_up(db.sessionmaker, connector)
        finally:
            await connector.aclose()
    assert report.stored == 1
    summary, _, events = await stored(db, "V-9")
    assert summary == "pushed" and "V-9-late" in events
