"""Import, push and sync are one way in: the same validator (same reasons for the same bad record), the
same upsert, and the same counter, `gateway_ingest_records_total{source, result}`, counted when stored."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from connectors import ComplaintsConnector, ConnectorConfig
from connectors.simulators import complaints, run_in_thread
from gateway.api.app import create_app
from gateway.api.ingest import sign
from gateway.complaints.models import Complaint
from gateway.complaints.records import validate_record
from gateway.core.settings import Settings
from gateway.ingest.importer import import_file
from gateway.ingest.store import store_records
from gateway.ingest.sync import sync_until_caught_up
from gateway.units.tree import load_units as load_index
from tests.conftest import Database
from tests.factories import load_units, record

SECRET = "ways-in-push-secret"
GOOD = [record("WAY-1"), record("WAY-2", handling_unit="510104001")]
BAD = [
    record("WAY-BAD-UNIT", handling_unit="999999"),
    record("WAY-BAD-KIND", kind="GOSSIP"),
    {"id": "WAY-BAD-EMPTY"},
]


def counted(source: str, result: str) -> float:
    return REGISTRY.get_sample_value("gateway_ingest_records_total", {"source": source, "result": result}) or 0.0


async def stored_ids(db: Database) -> set[str]:
    async with db.sessionmaker() as session:
        return set((await session.execute(select(Complaint.id))).scalars())


async def via_import(db: Database, tmp_path: Path) -> dict[str | None, str]:
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [*GOOD, *BAD]), encoding="utf-8")
    report = await import_file(db.sessionmaker, path, progress=False)
    return {r.id: r.reason for r in report.rejected}


async def via_push(db: Database) -> dict[str | None, str]:
    app = create_app(Settings(database_url=db.url, ingest_secret=SECRET, jwt_secret="x",  # type: ignore[arg-type]
                              dispatcher=False))
    body = json.dumps({"items": [*GOOD, *BAD]}, ensure_ascii=False).encode()
    signature = sign(SECRET.encode(), body, int(time.time()))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gw"
    ) as client:
        resp = await client.post("/api/v1/ingest/complaints", content=body,
                                 headers={"X-Signature": signature, "Content-Type": "application/json"})
    assert resp.status_code == 200, resp.text
    return {r["id"]: r["reason"] for r in resp.json()["rejected"]}


async def via_sync(db: Database) -> dict[str | None, str]:
    with run_in_thread(complaints.create_app([*GOOD, *BAD], token="t")) as url:
        async with ComplaintsConnector(ConnectorConfig(url=url, token="t", timeout_s=2)) as connector:
            report = await sync_until_caught_up(db.sessionmaker, connector, on_reject=lambda r: None)
    return {r.id: r.reason for r in report.rejected}


@pytest.mark.parametrize("way", ["import", "push", "sync"])
async def test_every_way_in_validates_stores_and_counts_alike(db: Database, tmp_path: Path, way: str) -> None:
    await load_units(db.sessionmaker)
    async with db.sessionmaker() as session:
        units = await load_index(session)
    expected: dict[str | None, str] = {}
    for raw in BAD:
        with pytest.raises(ValueError) as refused:
            validate_record(raw, units)
        expected[raw.get("id")] = str(refused.value)
    assert "handling_unit: unknown unit code 999999" in expected["WAY-BAD-UNIT"]

    before = {result: counted(way, result) for result in ("stored", "rejected")}
    rejected = await {"import": lambda: via_import(db, tmp_path), "push": lambda: via_push(db),
                      "sync": lambda: via_sync(db)}[way]()
    assert rejected == expected
    assert await stored_ids(db) == {"WAY-1", "WAY-2"}
    assert counted(way, "stored") - before["stored"] == len(GOOD)
    assert counted(way, "rejected") - before["rejected"] == len(BAD)


async def test_a_rolled_back_batch_counts_nothing_stored(db: Database) -> None:
    await load_units(db.sessionmaker)
    before = counted("push", "stored")
    async with db.sessionmaker() as session:
        units = await load_index(session)
    async with db.sessionmaker() as session:
        await store_records(session, [validate_record(r, units) for r in GOOD], units, source="push")
        await session.rollback()
    assert await stored_ids(db) == set() and counted("push", "stored") == before


def test_one_validator_reads_text_and_values_alike() -> None:
    line: Any = json.dumps(GOOD[0], ensure_ascii=False)
    assert validate_record(line) == validate_record(line.encode()) == validate_record(GOOD[0])
    for bad, reason in (("{nope", "not valid JSON"), ("[1, 2]", "record must be a JSON object"),
                        ([1, 2], "record must be a JSON object")):
        with pytest.raises(ValueError, match=reason):
            validate_record(bad)
