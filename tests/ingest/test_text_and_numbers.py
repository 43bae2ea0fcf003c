"""Text and numbers the database or JSON cannot hold (records.md 1.1): U+0000, unpaired surrogates, NaN and
Infinity, nesting past 16 levels in an event's `data`. Whichever way a record comes in — a file, a signed
push, a sync page — it is rejected with its field named, its neighbours are stored, and SQLite and
PostgreSQL answer the same; a unit file is refused whole, naming the line. Everything goes through the real
entry points: the CLI as a subprocess, HTTP over loopback, the connector against a server on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors import ComplaintsConnector, ConnectorConfig
from connectors.simulators import run_in_thread
from gateway.api.ingest import sign
from gateway.complaints.models import Complainant, Complaint, Event
from gateway.core.settings import Settings
from gateway.ingest.sync import sync_until_caught_up
from gateway.units.models import OrgUnit
from tests.conftest import Database
from tests.factories import UNITS_CSV, event, load_units, record
from tests.loopback import serve

SECRET = "push-secret-for-text-tests"


def nested(levels: int) -> dict[str, Any]:
    """An object `levels` deep, itself counted: nested(1) == {"reason": "x"}."""
    value: dict[str, Any] = {"reason": "x"}
    for _ in range(levels - 1):
        value = {"reason": "x", "more": value}
    return value


def with_data(rid: str, data: Any) -> dict[str, Any]:
    rec = record(rid)
    rec["events"].append(event(f"{rid}-r", "REJECTED", "2024-03-05T09:00:00+08:00", data))
    return rec


# Each bad record as the JSON text a platform would send (escapes written out, as they travel), with the
# field its rejection must name. The text is spliced into a line/body as is.
def _text(rec: dict[str, Any]) -> str:
    return json.dumps(rec, ensure_ascii=False)


BAD: dict[str, tuple[str, str]] = {
    "NUL-SUMMARY": (_text(record("NUL-SUMMARY", summary="变质\x00食品")), "summary: contains U+0000"),
    "NUL-NAME": (_text(record("NUL-NAME", complainant={"name": "\x00", "phone": None, "real_name": False})),
                 "complainant.name: contains U+0000"),
    "NUL-DATA": (_text(with_data("NUL-DATA", {"reason": "a\x00b"})), "events.2.data.reason: contains U+0000"),
    "NUL-KEY": (_text(with_data("NUL-KEY", {"reason": "r", "k\x00": 1})), "events.2.data.k"),
    "NUL-EXTRA": (_text(record("NUL-EXTRA", note="\x00")), "note: contains U+0000"),
    "NAN": (_text(with_data("NAN", {"reason": "r", "score": 1.0})).replace("1.0", "NaN"),
            "events.2.data.score: is nan"),
    "INF": (_text(with_data("INF", {"reason": "r", "score": 1.0})).replace("1.0", "Infinity"),
            "events.2.data.score: is inf"),
    "NEG-INF": (_text(with_data("NEG-INF", {"reason": "r", "score": 1.0})).replace("1.0", "-Infinity"),
                "events.2.data.score: is -inf"),
    "HUGE": (_text(with_data("HUGE", {"reason": "r", "score": 1.0})).replace("1.0", "1e400"),
             "events.2.data.score: is inf"),
    "SURROGATE": (_text(record("SURROGATE", summary="@S@")).replace("@S@", "\\ud800"),
                  "summary: contains an unpaired surrogate (U+D800)"),
    "LOW-SURROGATE": (_text(with_data("LOW-SURROGATE", {"reason": "@S@"})).replace("@S@", "x\\udfff"),
                      "events.2.data.reason: contains an unpaired surrogate (U+DFFF)"),
    "DEEP": (_text(with_data("DEEP", nested(17))), "events.2.data: nests deeper than 16 levels"),
    # Instants whose UTC is past what dates can hold: a whole batch used to fail on binding them.
    "YEAR-1": (_text(record("YEAR-1", received_at="0001-01-01T00:00:00+08:00")),
               "received_at: must fall between 1900-01-01 and 2199-12-31"),
    "YEAR-9999": (_text(with_data("YEAR-9999", {"reason": "r"})).replace(
        "2024-03-05T09:00:00+08:00", "9999-12-31T23:59:59-23:59"), "events.2.at: must fall between"),
}

# Beside them, records that look odd but are valid and must round-trip exactly.
GOOD_ODD: dict[str, dict[str, Any]] = {
    "EMOJI": record("EMOJI", summary="😀 surrogate pair in JSON: PAIR"),  # PAIR: written as escapes
    "CONTROL": record("CONTROL", summary="tab\tbell\x07 escape\x1b del\x7f"),
    "DEEP-16": with_data("DEEP-16", nested(16)),
    "BIG-INT": with_data("BIG-INT", {"reason": "r", "n": 2**62}),
}


def good(n: int) -> list[dict[str, Any]]:
    return [record(f"OK-{i}") for i in range(n)]


async def stored_ids(db: Database) -> set[str]:
    async with db.sessionmaker() as s:
        return set((await s.execute(select(Complaint.id))).scalars())


async def assert_odd_ones_round_trip(db: Database) -> None:
    async with db.sessionmaker() as s:
        summaries = dict((await s.execute(select(Complaint.id, Complaint.summary))).all())
        data = dict((await s.execute(select(Event.id, Event.data).where(Event.type == "REJECTED"))).all())
    assert summaries["EMOJI"] == "😀 surrogate pair in JSON: 😀"
    assert summaries["CONTROL"] == GOOD_ODD["CONTROL"]["summary"]
    assert data["DEEP-16-r"] == nested(16)
    assert data["BIG-INT-r"] == {"reason": "r", "n": 2**62}


def lines_of(n_good: int) -> tuple[list[str], dict[int, str]]:
    """The good records with each bad and odd one spliced in; line number -> bad record id."""
    lines = [_text(r) for r in good(n_good)]
    where: dict[int, str] = {}
    for k, (text, _) in enumerate(BAD.values()):
        lines.insert(3 * k + 1, text)
    for rec in GOOD_ODD.values():
        lines.append(_text(rec).replace("PAIR", "\\ud83d\\ude00"))
    for number, line in enumerate(lines, start=1):
        for rid in BAD:
            if f'"id": "{rid}"' in line:
                where[number] = rid
    return lines, where


def gateway(db: Database, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True,
                          env=db.env(**env), timeout=180)


async def test_import_rejects_each_bad_record_by_field_and_stores_the_rest(db: Database, tmp_path: Path) -> None:
    await load_units(db.sessionmaker)
    lines, where = lines_of(60)
    data = tmp_path / "records.jsonl"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rejects = tmp_path / "rejects.jsonl"
    done = gateway(db, "import", str(data), "--rejects", str(rejects), "--quiet")
    assert done.returncode == 1, done.stderr
    assert f"stored {60 + len(GOOD_ODD)} " in done.stdout and f"rejected {len(BAD)}" in done.stdout
    written = {w["line"]: w for w in map(json.loads, rejects.read_text(encoding="utf-8").splitlines())}
    assert set(written) == set(where)
    for line, rid in where.items():
        assert written[line]["id"] == rid
        assert BAD[rid][1] in written[line]["reason"], (rid, written[line]["reason"])
        assert f"line {line}: {BAD[rid][1]}" in done.stderr
    assert await stored_ids(db) == {f"OK-{i}" for i in range(60)} | set(GOOD_ODD)
    await assert_odd_ones_round_trip(db)


async def test_the_issue_example_880_good_records_and_one_nul(db: Database, tmp_path: Path) -> None:
    """PostgreSQL used to abort the whole import on the one line; SQLite stored it silently."""
    await load_units(db.sessionmaker)
    lines = [_text(r) for r in good(880)]
    lines.insert(400, BAD["NUL-SUMMARY"][0])
    data = tmp_path / "records.jsonl"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = gateway(db, "import", str(data), "--quiet")
    assert done.returncode == 1
    assert "lines 881: stored 880" in done.stdout and "rejected 1" in done.stdout
    assert "line 401: summary: contains U+0000" in done.stderr
    assert len(await stored_ids(db)) == 880


@pytest.fixture
def gateway_url(db: Database) -> Iterator[str]:
    with serve(Settings(database_url=db.url, ingest_secret=SECRET, jwt_secret="j" * 32, dispatcher=False)) as url:
        yield url


async def post_signed(url: str, body: bytes) -> httpx.Response:
    headers = {"X-Signature": sign(SECRET.encode(), body, int(time.time())), "Content-Type": "application/json"}
    async with httpx.AsyncClient(timeout=60) as client:
        return await client.post(f"{url}/api/v1/ingest/complaints", content=body, headers=headers)


async def test_push_rejects_each_bad_item_by_field_and_stores_the_rest(db: Database, gateway_url: str) -> None:
    await load_units(db.sessionmaker)
    items, _ = lines_of(20)
    body = ('{"items": [' + ",".join(items) + "]}").encode()
    resp = await post_signed(gateway_url, body)
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["stored"] == 20 + len(GOOD_ODD)
    reasons = {r["id"]: r["reason"] for r in answer["rejected"]}
    assert set(reasons) == set(BAD)
    for rid, (_, named) in BAD.items():
        assert named in reasons[rid], (rid, reasons[rid])
    assert await stored_ids(db) == {f"OK-{i}" for i in range(20)} | set(GOOD_ODD)
    await assert_odd_ones_round_trip(db)
    # The answers that follow are still valid JSON: nothing unholdable was stored.
    async with db.sessionmaker() as s:
        assert (await s.execute(select(func.count()).select_from(Complainant))).scalar_one() == 20 + len(GOOD_ODD)


@pytest.mark.parametrize("id_text", ['"\\ud800"', '"a\\u0000b"'])
async def test_a_bad_id_is_not_echoed(db: Database, gateway_url: str, id_text: str) -> None:
    """A rejected item's id goes back in the answer only when it can be written out again."""
    await load_units(db.sessionmaker)
    body = ('{"items": [' + _text(record("X")).replace('"X"', id_text, 1) + "]}").encode()
    resp = await post_signed(gateway_url, body)
    assert resp.status_code == 200
    assert resp.json()["rejected"][0]["id"] is None and resp.json()["stored"] == 0


@pytest.mark.parametrize(("body", "says"), [
    (b'{"items": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}", "nests too deep"),
    (b'{"items": []', "not valid JSON at line 1 column 13"),
    (b'{"items": ["\xff"]}', "not valid UTF-8"),
])
async def test_push_bodies_that_are_not_json(db: Database, gateway_url: str, body: bytes, says: str) -> None:
    resp = await post_signed(gateway_url, body)
    assert resp.status_code == 400 and says in resp.json()["error"]["message"]
    assert await stored_ids(db) == set()


# ------------------------------------------------------------------------------------------------ sync


def raw_platform(items_text: str) -> Starlette:
    """A complaint platform that sends one page exactly as written (the simulator's encoder could not
    write NaN or a lone surrogate), then an empty page."""
    page = ('{"items": [' + items_text + '], "next_cursor": "c1", "has_more": false}').encode()
    empty = b'{"items": [], "next_cursor": "c1", "has_more": false}'

    async def changes(request: Request) -> Response:
        body = empty if request.query_params.get("cursor") == "c1" else page
        return Response(body, media_type="application/json")

    return Starlette(routes=[Route("/api/v1/complaints/changes", changes)])


async def test_sync_rejects_each_bad_record_by_field_and_stores_the_rest(db: Database) -> None:
    await load_units(db.sessionmaker)
    items, _ = lines_of(10)
    rejected: list[Any] = []
    with run_in_thread(raw_platform(",".join(items))) as url:
        connector = ComplaintsConnector(ConnectorConfig(url=url, token="t", timeout_s=10))
        try:
            report = await sync_until_caught_up(db.sessionmaker, connector, on_reject=rejected.append)
        finally:
            await connector.aclose()
    assert report.stored == 10 + len(GOOD_ODD)
    reasons = {r.id: r.reason for r in rejected}
    assert set(reasons) == set(BAD)
    for rid, (_, named) in BAD.items():
        assert named in reasons[rid], (rid, reasons[rid])
    assert await stored_ids(db) == {f"OK-{i}" for i in range(10)} | set(GOOD_ODD)
    await assert_odd_ones_round_trip(db)


# ------------------------------------------------------------------------------------------- unit files


@pytest.mark.parametrize(("data", "status", "says"), [
    (UNITS_CSV.replace("广元市市场监督管理局", "广元\x00市").encode(), 1, "line 4: contains U+0000"),
    (UNITS_CSV.encode().replace("利州区市场监督管理局".encode(), b"\xed\xa0\x80"), 2, "line 5: not valid UTF-8"),
    (UNITS_CSV.encode().replace("昭化区".encode(), b"\xff"), 2, "line 8: not valid UTF-8"),
    (UNITS_CSV.replace("广元市市场监督管理局", "长" * 201).encode(), 1, "line 4: name is longer than 200"),
])
async def test_unit_files_name_the_line_and_load_nothing(db: Database, tmp_path: Path, data: bytes, status: int,
                                                         says: str) -> None:
    path = tmp_path / "units.csv"
    path.write_bytes(data)
    done = gateway(db, "import-units", str(path))
    assert done.returncode == status and says in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "nothing was loaded" in done.stderr
    async with db.sessionmaker() as s:
        assert (await s.execute(select(func.count()).select_from(OrgUnit))).scalar_one() == 0
