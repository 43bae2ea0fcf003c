"""`gateway sync --once` as a real process against a complaint platform that answers badly: its error bodies
never reach the command's result or reason (interfaces.md 1.1), a feed that does not advance ends the
sync with an error instead of looping forever, and pages stored before a failure stay stored."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from connectors.simulators import complaints, generate_records, run_in_thread, sample_units_csv
from connectors.simulators.control import SimControl
from gateway.complaints.models import Complaint
from gateway.core.db import transaction
from gateway.ingest.units_file import import_units
from tests.conftest import Database

TOKEN = "sync-errors-token"
GATEWAY = str(Path(sys.executable).with_name("gateway"))
SECRET = "Traceback: psycopg2.OperationalError: connection to platform-db-2.intra (10.9.8.7) password=s3cr3t-pw"
LEAKS = ("s3cr3t-pw", "platform-db-2", "10.9.8.7", "Traceback")


def canned(status: int, body: str) -> dict[str, Any]:
    return {"status": status, "body_b64": base64.b64encode(body.encode()).decode()}


@pytest.fixture
def platform() -> Iterator[SimControl]:
    with run_in_thread(complaints.create_app(generate_records(30, seed=31), token=TOKEN)) as url:
        sim = SimControl("complaints", url)
        yield sim
        sim.close()


@pytest.fixture
async def store(db: Database) -> Database:
    async with transaction(db.sessionmaker) as session:
        await import_units(session, sample_units_csv())
    return db


def sync(db: Database, platform: SimControl) -> subprocess.CompletedProcess[str]:
    env = db.env(GATEWAY_COMPLAINTS_URL=platform.url, GATEWAY_COMPLAINTS_TOKEN=TOKEN, GATEWAY_CONNECTOR_ATTEMPTS="2",
                 GATEWAY_CONNECTOR_BUDGET_S="3")
    return subprocess.run([GATEWAY, "sync", "--once", "--limit", "10"], env=env, capture_output=True, text=True,
                          timeout=120)


async def stored(db: Database) -> int:
    async with db.sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(Complaint))).scalar_one())


@pytest.mark.parametrize("status", [422, 500])
async def test_an_error_body_stays_out_of_the_reason(store: Database, platform: SimControl, status: int) -> None:
    # The first page comes; then the platform fails with its internals in the body.
    platform.faults(script=["ok"], outage="canned", canned=[canned(status, SECRET)])
    done = sync(store, platform)
    assert done.returncode == 1 and done.stdout == ""
    reason = done.stderr.strip().splitlines()[-1]
    assert reason.startswith("gateway sync: ") and f"HTTP {status}" in reason and "request id" in reason
    assert not [leak for leak in LEAKS if leak in reason]
    assert await stored(store) == 10  # the page before the failure stays


async def test_a_feed_that_does_not_advance_ends_the_sync(store: Database, platform: SimControl) -> None:
    # Every page says "more", with the cursor it was asked for: following it would never end.
    stuck = json.dumps({"items": [], "next_cursor": "", "has_more": True})
    platform.faults(outage="canned", canned=[canned(200, stuck)])
    done = sync(store, platform)
    assert done.returncode == 1
    assert "UPSTREAM_ERROR" in done.stderr and "does not advance" in done.stderr
