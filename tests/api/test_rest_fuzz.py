"""Property: no query string or form makes the REST report, the evaluators' page or the push answer 500
(interfaces.md 1.1). Any text — U+0000, lone surrogates as the invalid UTF-8 a careless client sends, odd
digits, huge numbers — in every parameter, with tokens of every role, to the gateway on loopback, on each
database. Examples found on the way are kept as plain tests below."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.api.ingest import sign
from gateway.core.auth import ROLES, mint_token
from gateway.core.db import transaction
from gateway.core.settings import Settings
from gateway.ingest.units_file import import_units
from tests.conftest import BACKENDS
from tests.factories import UNITS_CSV
from tests.fuzzing import budget
from tests.loopback import run_with_sessionmaker, scratch_database, serve

JWT = "rest-fuzz-secret-0123456789abcdef"
PUSH = "rest-fuzz-push-secret"
TEXT = st.one_of(
    st.text(st.characters(codec=None), max_size=24),
    st.sampled_from(["", "\x00", "\ud800", "²", "٣", "-1", "99999999999999999999", "510000", "510802001",
                     "2024-01-01", "2024-02-30", "0001-01-01", "9999-12-31", "2024-03-31T23:59:59+08:00",
                     "default", "json", "csv", "xlsx", "table"]),
)
PARAMS = st.dictionaries(st.sampled_from(["unit", "level", "from", "to", "as_of", "scheme", "format"]), TEXT)


@pytest.fixture(scope="module", params=BACKENDS)
def base_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    async def units(sm: async_sessionmaker[AsyncSession]) -> None:
        async with transaction(sm) as session:
            await import_units(session, UNITS_CSV)

    with scratch_database(request.param, tmp_path_factory.mktemp("rest")) as url:
        run_with_sessionmaker(url, units)
        with serve(Settings(database_url=url, jwt_secret=JWT, ingest_secret=PUSH, dispatcher=False)) as base:
            yield base


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as c:
        yield c


def query_string(params: dict[str, str]) -> str:
    # A lone surrogate cannot be UTF-8: sent as the bytes a careless client would write (%ED%A0%80).
    return urlencode({k: v.encode("utf-8", "surrogatepass") for k, v in params.items()})


def no_internal_error(resp: httpx.Response) -> None:
    assert resp.status_code < 500, (resp.status_code, resp.request.url, resp.text[:500])
    if resp.headers.get("content-type", "").startswith("application/json"):
        orjson.loads(resp.content)


CALLER = st.tuples(st.sampled_from(["510000", "510800", "510802001", "999999"]),
                   st.sets(st.sampled_from(ROLES), max_size=3))


@pytest.mark.fuzz
@budget(suite=15, fuzz=500)
@given(params=PARAMS, caller=CALLER)
async def test_the_report_api_never_fails_inside(client: httpx.AsyncClient, params: dict[str, str],
                                                 caller: tuple[str, Any]) -> None:
    unit, roles = caller
    headers = {"Authorization": f"Bearer {mint_token(JWT, 't', unit, sorted(roles | {'evaluator'}))}"}
    no_internal_error(await client.get(f"/api/v1/kpi/report?{query_string(params)}", headers=headers))


@pytest.mark.fuzz
@budget(suite=10, fuzz=300)
@given(params=PARAMS, caller=CALLER, download=st.booleans())
async def test_the_evaluators_page_never_fails_inside(client: httpx.AsyncClient, params: dict[str, str],
                                                      caller: tuple[str, Any], download: bool) -> None:
    unit, roles = caller
    form = {**params, "token": mint_token(JWT, "t", unit, sorted(roles | {"evaluator"}))}
    resp = await client.post("/reports/download" if download else "/reports", content=query_string(form),
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    no_internal_error(resp)


@pytest.mark.fuzz
@budget(suite=10, fuzz=300)
@given(header=TEXT, body=st.binary(max_size=64) | TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")),
       signed=st.booleans(), skew=st.integers(-1000, 1000))
async def test_the_push_never_fails_inside(client: httpx.AsyncClient, header: str, body: bytes, signed: bool,
                                           skew: int) -> None:
    value = sign(PUSH.encode(), body, int(time.time()) + skew) if signed else header
    # What HTTP can carry in a header: no control characters, no surrounding spaces (the client refuses them).
    raw = bytes(b for b in value.encode("utf-8", "surrogatepass") if b >= 0x20 and b != 0x7F).strip()
    resp = await client.post("/api/v1/ingest/complaints", content=body,
                             headers={"X-Signature": raw, "Content-Type": "application/json"})
    no_internal_error(resp)


# ------------------------------------------------------------------------------------ examples, kept


@pytest.mark.parametrize("params", [
    {"unit": "510000", "level": "²", "from": "2024-01-01", "to": "2024-01-31"},
    {"unit": "510000", "level": "99999999999999999999", "from": "2024-01-01", "to": "2024-01-31"},
    {"unit": "5100\x0000", "from": "2024-01-01", "to": "2024-01-31"},
    {"unit": "\ud800", "from": "2024-01-01", "to": "2024-01-31"},
    {"unit": "510000", "from": "0001-01-01", "to": "9999-12-31"},
    {"unit": "510000", "from": "2024-01-01", "to": "2024-01-31", "as_of": "0001-01-01T00:00:00+08:00"},
    {"unit": "510000", "from": "2024-01-01", "to": "2024-01-31", "scheme": "\x00"},
])
async def test_report_api_examples(client: httpx.AsyncClient, params: dict[str, str]) -> None:
    headers = {"Authorization": f"Bearer {mint_token(JWT, 't', '510000', ['evaluator'])}"}
    resp = await client.get(f"/api/v1/kpi/report?{query_string(params)}", headers=headers)
    no_internal_error(resp)
    assert resp.status_code in (400, 403), resp.text
