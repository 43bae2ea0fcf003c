"""The KPI report over REST (`GET /api/v1/kpi/report`) and on the command line (`gateway report`)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from openpyxl import load_workbook

from gateway.api.app import create_app
from gateway.api.reports import router as kpi_router
from gateway.core.auth import mint_token
from gateway.core.settings import Settings
from tests.conftest import Database
from tests.reports.test_reports import ingest, march_records

from tests.factories import load_units  # isort: skip

SECRET = "kpi-test-secret-of-at-least-32-bytes"
URL = "/api/v1/kpi/report"
QUERY = {"from": "2024-03-01", "to": "2024-03-31", "as_of": "2024-06-30T23:59:59+08:00"}


def bearer(unit: str = "510000", roles: tuple[str, ...] = ("evaluator",), secret: str = SECRET) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(secret, 'tester', unit, list(roles))}"}


@pytest.fixture
async def client(db: Database) -> AsyncIterator[httpx.AsyncClient]:
    await load_units(db.sessionmaker)
    await ingest(db, march_records())
    app = create_app(Settings(database_url=db.url, jwt_secret=SECRET))
    if not any(getattr(r, "path", None) == URL for r in app.routes):
        app.include_router(kpi_router)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
            yield c


async def test_json_is_the_document(client: httpx.AsyncClient) -> None:
    resp = await client.get(URL, params={**QUERY, "unit": "510000"}, headers=bearer())
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert doc["unit"]["code"] == "510000" and doc["level"] == 3 and doc["total"]["received"] == 6
    assert [r["unit"]["code"] for r in doc["rows"]] == ["510800", "510100"]


async def test_csv_and_xlsx_downloads(client: httpx.AsyncClient) -> None:
    resp = await client.get(URL, params={**QUERY, "unit": "510800", "level": "5", "format": "csv"}, headers=bearer())
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    assert "attachment" in resp.headers["content-disposition"]
    lines = list(csv.DictReader(io.StringIO(resp.text)))
    assert [line["unit_code"] for line in lines] == ["510802001", "510811001", "510802002", "510800"]
    resp = await client.get(URL, params={**QUERY, "unit": "510000", "format": "xlsx"}, headers=bearer())
    assert resp.status_code == 200
    wb = load_workbook(io.BytesIO(resp.content))
    assert wb.sheetnames == ["报表 Report", "参数 Parameters"]


@pytest.mark.parametrize(
    ("params", "headers", "status", "code"),
    [
        ({"unit": "510000"}, {}, 401, "UNAUTHENTICATED"),
        ({"unit": "510000"}, {"Authorization": "Bearer nonsense"}, 401, "UNAUTHENTICATED"),
        ({"unit": "510000"}, bearer(secret="another-secret-of-at-least-32-bytes"), 401, "UNAUTHENTICATED"),
        ({"unit": "510000"}, bearer(roles=("reader",)), 403, "FORBIDDEN"),
        ({"unit": "510000"}, bearer(unit="510800"), 403, "FORBIDDEN"),  # a superior's report
        ({"unit": "510100"}, bearer(unit="510800"), 403, "FORBIDDEN"),  # a sibling's
        ({"unit": "999999"}, bearer(), 403, "FORBIDDEN"),  # unknown: not revealed
        ({"unit": "510000", "level": "2"}, bearer(), 400, "BAD_USER_INPUT"),
        ({"unit": "510000", "level": "x"}, bearer(), 400, "BAD_USER_INPUT"),
        ({"unit": "510000", "from": "2024-04-01"}, bearer(), 400, "BAD_USER_INPUT"),
        ({"unit": "510000", "as_of": "2024-06-30"}, bearer(), 400, "BAD_USER_INPUT"),
        ({"unit": "510000", "scheme": "nope"}, bearer(), 400, "BAD_USER_INPUT"),
        ({"unit": "510000", "format": "pdf"}, bearer(), 400, "BAD_USER_INPUT"),
    ],
)
async def test_errors(client: httpx.AsyncClient, params: dict[str, str], headers: dict[str, str], status: int,
                      code: str) -> None:
    resp = await client.get(URL, params={**QUERY, **params}, headers=headers)
    assert resp.status_code == status, resp.text
    assert resp.json()["errors"][0]["extensions"]["code"] == code


async def test_own_subordinate_unit_is_allowed(client: httpx.AsyncClient) -> None:
    resp = await client.get(URL, params={**QUERY, "unit": "510802"}, headers=bearer(unit="510800"))
    assert resp.status_code == 200 and resp.json()["level"] == 5


def gateway(db: Database, *args: str) -> subprocess.CompletedProcess[bytes]:
    # as the `gateway` console script runs it: gateway.cli.base imported as itself, not as __main__
    entry = "import sys; from gateway.cli.main import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", entry, *args], capture_output=True, env=db.env(), timeout=120)


async def test_cli_report(db: Database, tmp_path: Path) -> None:
    await load_units(db.sessionmaker)
    await ingest(db, march_records())
    base = ["report", "--unit", "510000", "--from", "2024-03-01", "--to", "2024-03-31",
            "--as-of", "2024-06-30T23:59:59+08:00"]
    done = gateway(db, *base, "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["total"]["received"] == 6
    table = gateway(db, *base)
    assert table.returncode == 0 and "广元市市场监督管理局" in table.stdout.decode() and not table.stderr
    out = tmp_path / "r.xlsx"
    written = gateway(db, *base, "--format", "xlsx", "--out", str(out))
    assert written.returncode == 0 and written.stdout == b"" and load_workbook(out).sheetnames[0] == "报表 Report"
    bad = gateway(db, "report", "--unit", "510000", "--level", "2", "--from", "2024-03-01", "--to", "2024-03-31")
    assert bad.returncode != 0 and bad.stdout == b""
    assert len(bad.stderr.decode().strip().splitlines()) == 1 and "level" in bad.stderr.decode()


async def test_rest_cli_and_page_give_the_same_csv_bytes(db: Database, tmp_path: Path) -> None:
    """One CSV (kpi/exports.py): UTF-8 with a BOM, formula-looking text made literal, from every entry point."""
    await load_units(db.sessionmaker)
    await ingest(db, march_records())
    args = {"unit": "510000", "level": "4", "from": "2024-03-01", "to": "2024-03-31",
            "as_of": "2024-06-30T23:59:59+08:00"}
    app = create_app(Settings(database_url=db.url, jwt_secret=SECRET, dispatcher=False))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
            rest = (await c.get(URL, params={**args, "format": "csv"}, headers=bearer())).content
            page = (await c.post("/reports/download", data={**args, "format": "csv"}, headers=bearer())).content
    done = gateway(db, "report", "--unit", "510000", "--level", "4", "--from", "2024-03-01", "--to", "2024-03-31",
                   "--as-of", "2024-06-30T23:59:59+08:00", "--format", "csv")
    assert done.returncode == 0, done.stderr
    out = tmp_path / "r.csv"
    assert gateway(db, "report", "--unit", "510000", "--level", "4", "--from", "2024-03-01", "--to", "2024-03-31",
                   "--as-of", "2024-06-30T23:59:59+08:00", "--format", "csv", "--out", str(out)).returncode == 0
    assert rest.startswith(b"\xef\xbb\xbf") and b"510802" in rest
    assert rest == page == done.stdout == out.read_bytes()
