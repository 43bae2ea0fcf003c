"""The platform simulator's pushes into the real gateway over loopback (interfaces.md 1.1, records.md 1.1):
signed `t=…,v1=…` pushes of changed records are stored; an old push replayed with its old signature is
refused (401) and stores nothing; a stale copy, freshly signed, does not roll a record back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from connectors.simulators import complaints, generate_records, run_in_thread, sample_units_csv
from gateway.complaints.models import Complaint
from gateway.core.db import transaction
from gateway.core.settings import Settings
from gateway.ingest.units_file import import_units
from tests.conftest import Database
from tests.loopback import serve

SECRET = "platform-push-secret-for-e2e"


@pytest.fixture
async def gateway_url(db: Database) -> Any:
    async with transaction(db.sessionmaker) as session:
        await import_units(session, sample_units_csv())
    with serve(Settings(database_url=db.url, ingest_secret=SECRET, jwt_secret="j" * 32, dispatcher=False)) as url:
        yield url


@pytest.fixture
def platform(gateway_url: str) -> Iterator[httpx.Client]:
    app = complaints.create_app([], push_url=f"{gateway_url}/api/v1/ingest/complaints", push_secret=SECRET)
    with run_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


async def summaries(db: Database) -> dict[str, str]:
    async with db.sessionmaker() as session:
        return dict((await session.execute(select(Complaint.id, Complaint.summary))).all())  # type: ignore[arg-type]


async def test_signed_pushes_are_stored_and_neither_replays_nor_stale_copies_roll_back(
    db: Database, platform: httpx.Client
) -> None:
    records = generate_records(3, seed=41)
    first = platform.post("/_sim/records", json={"items": records, "stamp": True}).json()
    assert first["pushed"] == [{"status": 200, "body": {"stored": 3, "rejected": []}}]
    assert await summaries(db) == {r["id"]: r["summary"] for r in records}

    rid = records[0]["id"]
    before = platform.get(f"/api/v1/complaints/{rid}").json()  # version 1, as the platform holds it
    changed = platform.post("/_sim/records", json={"items": [{**before, "summary": "平台修改后的内容"}],
                                                   "stamp": True}).json()
    assert changed["pushed"][0]["status"] == 200
    assert (await summaries(db))[rid] == "平台修改后的内容"

    # Version 1 pushed again as it went out an hour ago: its signature is out of the tolerance.
    replay = platform.post("/_sim/push", json={"items": [before], "t": int(time.time()) - 3600}).json()
    assert replay["pushed"][0]["status"] == 401
    # Version 1 signed afresh: accepted, but older than what is stored, so its fields do not replace.
    stale = platform.post("/_sim/push", json={"items": [before]}).json()
    assert stale["pushed"][0]["status"] == 200
    assert (await summaries(db))[rid] == "平台修改后的内容"
