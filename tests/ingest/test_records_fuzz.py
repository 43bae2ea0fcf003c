"""Property: a batch of records, some with any text, number or structure put into one field, goes in by
import and by signed push (HTTP over loopback) on each database. Nothing ends in a 500 or a crash; every
untouched neighbour is stored; a value JSON or the database cannot hold (U+0000, a lone surrogate, NaN,
Infinity) is always rejected, naming its field; whatever is stored reads back exactly as sent; every answer
is valid JSON. `make fuzz` runs many more examples."""

from __future__ import annotations

import io
import itertools
import json
import math
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.api.ingest import sign
from gateway.complaints.models import Complainant, Complaint, Event
from gateway.core.db import make_engine, make_sessionmaker
from gateway.core.settings import Settings
from gateway.ingest.importer import import_file
from tests.conftest import BACKENDS
from tests.factories import UNITS_CSV, event, record
from tests.fuzzing import budget
from tests.loopback import run_with_sessionmaker, scratch_database, serve

SECRET = "push-secret-for-the-property-tests"
SERIAL = itertools.count()

TEXT = st.one_of(st.text(st.characters(codec=None), max_size=40),
                 st.sampled_from(["", "\x00", "\ud800", "a\udfffb", "😀", "\ufeff", "\u2028", "'); DROP TABLE x;--"]))
NUMBERS = st.one_of(st.integers(), st.floats(), st.sampled_from([2**64, -(2**63), 1e308, float("nan")]))
JSON_VALUES = st.recursive(st.none() | st.booleans() | NUMBERS | TEXT,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                           max_leaves=10)
# Where a value goes: (path in the record, what may go there).
FIELDS: list[tuple[tuple[Any, ...], st.SearchStrategy[Any]]] = [
    (("summary",), TEXT),
    (("complainant", "name"), TEXT),
    (("complainant", "phone"), TEXT),
    (("respondent", "name"), TEXT),
    (("events", 2, "data", "reason"), TEXT),
    (("events", 2, "data", "extra"), JSON_VALUES),
    (("events", 2, "data"), JSON_VALUES),
    (("events", 0, "id"), TEXT),
    (("received_at",), TEXT),
    (("updated_at",), TEXT),
    (("amount_involved",), TEXT | NUMBERS),
    (("note",), JSON_VALUES),  # a field records.md does not know: ignored, unless it holds the unholdable
    (("id",), TEXT),
]


def base(rid: str) -> dict[str, Any]:
    rec = record(rid)
    rec["events"].append(event(f"{rid}-r", "REJECTED", "2024-03-05T09:00:00+08:00", {"reason": "r"}))
    return rec


def unholdable(value: Any) -> bool:
    """Independent of the gateway's code: does the value hold what JSON or PostgreSQL text cannot?"""
    if isinstance(value, str):
        return "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list):
        return any(unholdable(v) for v in value)
    if isinstance(value, dict):
        return any(unholdable(k) or unholdable(v) for k, v in value.items())
    return False


Changed = dict[int, tuple[tuple[Any, ...], Any]]  # position in the batch -> (path, value put there)


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[dict[str, Any]], Changed]:
    """Records (ids unique to this example) and, for the changed ones, the path and the value put there."""
    prefix = f"F{next(SERIAL)}"
    out: list[dict[str, Any]] = []
    changed: Changed = {}
    for i in range(draw(st.integers(1, 6))):
        rid = f"{prefix}-{i}"
        rec = base(rid)
        if draw(st.booleans()):
            path, values = draw(st.sampled_from(FIELDS))
            value = draw(values)
            target = rec
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
            changed[i] = (path, value)
        out.append(rec)
    return out, changed


def text_of(records: list[dict[str, Any]]) -> list[str]:
    # As a careless platform writes them: lone surrogates as escapes, NaN and Infinity as bare words.
    return [json.dumps(r, ensure_ascii=True, allow_nan=True) for r in records]


@pytest.fixture(scope="module", params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from gateway.core.db import transaction
    from gateway.ingest.units_file import import_units

    async def units(sm: async_sessionmaker[AsyncSession]) -> None:
        async with transaction(sm) as session:
            await import_units(session, UNITS_CSV)

    with scratch_database(request.param, tmp_path_factory.mktemp("records-fuzz")) as url:
        run_with_sessionmaker(url, units)
        yield url


@pytest.fixture
async def sessionmaker(database: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture(scope="module")
def push_url(database: str) -> Iterator[str]:
    with serve(Settings(database_url=database, ingest_secret=SECRET, jwt_secret="j" * 32, dispatcher=False)) as url:
        yield url


def exact(value: Any) -> Any:
    """A JSON value as any JSON parser reads it back: integers past 64 bits become floating point."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int) and not -(2**63) <= value < 2**64:
        return float(value)
    if isinstance(value, list):
        return [exact(v) for v in value]
    if isinstance(value, dict):
        return {k: exact(v) for k, v in value.items()}
    return value


async def check_stored(sm: async_sessionmaker[AsyncSession], records: list[dict[str, Any]], changed: Changed,
                       stored_at: set[int]) -> None:
    """Every untouched record is stored; nothing unholdable is; what is stored reads back as sent."""
    for i in range(len(records)):
        if i not in changed:
            assert i in stored_at, f"neighbour {records[i]['id']} lost"
        elif unholdable(changed[i][1]):
            assert i not in stored_at, f"{changed[i]} was stored"
    last = {records[i]["id"]: records[i] for i in sorted(stored_at)}  # the same id twice: the later copy
    if not last:
        return
    async with sm() as s:
        rows = {r.id: r for r in (await s.execute(select(Complaint).where(Complaint.id.in_(last)))).scalars()}
        people = {p.complaint_id: p for p in (await s.execute(
            select(Complainant).where(Complainant.complaint_id.in_(last)))).scalars()}
        events = [rec["events"][2]["id"] for rec in last.values()]
        data = dict((await s.execute(select(Event.id, Event.data).where(Event.id.in_(events)))).all())
    for rid, rec in last.items():
        assert rows[rid].summary == rec["summary"]
        assert (people[rid].name, people[rid].phone) == (rec["complainant"]["name"], rec["complainant"]["phone"])
        assert data[rec["events"][2]["id"]] == exact(rec["events"][2]["data"])


@pytest.mark.fuzz
@budget(suite=8, fuzz=300)
@given(batch=batches())
async def test_import_keeps_neighbours_and_refuses_the_unholdable(
    sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, batch: Any
) -> None:
    records, changed = batch
    path = tmp_path / f"batch-{next(SERIAL)}.jsonl"
    path.write_text("\n".join(text_of(records)) + "\n", encoding="ascii")
    rejects = io.StringIO()
    report = await import_file(sessionmaker, path, rejects=rejects, progress=False)
    assert report.lines == len(records) and report.stored + len(report.rejected) == len(records)
    for rejection in report.rejected:
        assert rejection.reason and "\n" not in rejection.reason and rejection.index - 1 in changed
    for line in rejects.getvalue().split("\n")[:-1]:  # JSON Lines end at \n only (not at U+2028)
        orjson.loads(line)  # the rejects file is valid JSON, whatever the line held
    rejected = {r.index - 1 for r in report.rejected}
    await check_stored(sessionmaker, records, changed, set(range(len(records))) - rejected)


@pytest.mark.fuzz
@budget(suite=8, fuzz=300)
@given(batch=batches())
async def test_push_keeps_neighbours_and_refuses_the_unholdable(
    sessionmaker: async_sessionmaker[AsyncSession], push_url: str, batch: Any
) -> None:
    records, changed = batch
    body = ('{"items": [' + ",".join(text_of(records)) + "]}").encode()
    headers = {"X-Signature": sign(SECRET.encode(), body, int(time.time())), "Content-Type": "application/json"}
    async with httpx.AsyncClient(timeout=60) as client:
        resp = await client.post(f"{push_url}/api/v1/ingest/complaints", content=body, headers=headers)
    assert resp.status_code == 200, resp.text
    answer = orjson.loads(resp.content)  # strict: valid JSON whatever was pushed
    assert answer["stored"] + len(answer["rejected"]) == len(records)
    for r in answer["rejected"]:
        assert r["reason"] and r["index"] in changed
    rejected = {r["index"] for r in answer["rejected"]}
    await check_stored(sessionmaker, records, changed, set(range(len(records))) - rejected)
