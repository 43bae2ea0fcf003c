"""`Complaint.deadlines` and the KPI report read one calendar and policy cache: after an operator edits the
holiday file, both follow it at once, in the same process, with no restart."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.api.app import create_app
from gateway.core.auth import mint_token
from gateway.core.settings import get_settings
from tests.conftest import Database
from tests.factories import event, load_units, record
from tests.reports.test_reports import ingest

SECRET = "deadlines-test-secret-of-32-bytes-min"
QUERY = """query($asOf: DateTime) {
  complaint(id: "DL-1") { deadlines { code dueDate state } }
  kpiReport(unit: "510800", level: 5, from: "2024-03-01", to: "2024-03-31", asOf: $asOf) {
    total { timelinessByObligation { code onTime late overdue } } } }"""
AS_OF = "2024-06-30T23:59:59+08:00"


@pytest.fixture
def environment(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The gateway configured from the environment, as in production: one holiday file for everything."""
    holidays = tmp_path / "holidays.csv"
    holidays.write_text("date,kind\n", encoding="utf-8")
    for name, value in (("DATABASE_URL", db.url), ("JWT_SECRET", SECRET), ("HOLIDAYS_FILE", str(holidays)),
                        ("DISPATCHER", "off")):
        monkeypatch.setenv(f"GATEWAY_{name}", value)
    get_settings.cache_clear()
    yield holidays
    get_settings.cache_clear()


async def ask(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
    token = mint_token(SECRET, "eval", "510000", ["reader", "evaluator"])
    resp = await client.post("/graphql", json={"query": QUERY, "variables": {"asOf": AS_OF}},
                             headers={"Authorization": f"Bearer {token}"})
    body = resp.json()
    assert "errors" not in body, body
    deadline = {d["code"]: d for d in body["data"]["complaint"]["deadlines"]}["C_ACCEPT"]
    report = {o["code"]: o for o in body["data"]["kpiReport"]["total"]["timelinessByObligation"]}["C_ACCEPT"]
    return deadline, report


async def test_editing_the_holiday_file_moves_deadlines_and_reports_together(db: Database, environment: Path) -> None:
    await load_units(db.sessionmaker)
    # Received Friday 2024-03-01: accepting is due 7 working days later, Tuesday 03-12; accepted on 03-12.
    await ingest(db, [record("DL-1", received_at="2024-03-01T09:30:00+08:00", events=[
        event("DL-1-a", "ACCEPTED", "2024-03-12T17:00:00+08:00")])])
    app = create_app(get_settings())
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gw"
    ) as client:
        deadline, report = await ask(client)
        assert (deadline["dueDate"], deadline["state"]) == ("2024-03-12", "ON_TIME")
        assert (report["onTime"], report["late"]) == (1, 0)

        # The operator declares Saturday 03-09 a working day: due Monday 03-11, so accepting on 03-12 is late.
        environment.write_text("date,kind\n2024-03-09,workday\n", encoding="utf-8")
        stat = environment.stat()
        os.utime(environment, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a later mtime, surely
        deadline, report = await ask(client)
        assert (deadline["dueDate"], deadline["state"]) == ("2024-03-11", "LATE")
        assert (report["onTime"], report["late"]) == (0, 1)
