"""Operations: metrics that pass promtool, health and readiness, request ids carried upstream, JSON logs
(the compose file and image: tests/core/test_deployment.py)."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from connectors.context import request_id_var
from connectors.simulators import credit as sim_credit
from connectors.simulators.server import run_in_thread
from gateway.api.app import create_app
from gateway.core.auth import mint_token
from gateway.core.observability import JsonFormatter
from gateway.core.settings import Settings
from tests.conftest import Database
from tests.factories import USCC, load_units, record

ROOT = Path(__file__).resolve().parents[2]
SECRET = "ops-test-secret"


@pytest.fixture
async def client(db: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url=db.url, jwt_secret=SECRET, dispatcher=False))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
            yield c


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed")
async def test_metrics_pass_promtool(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    await client.get("/no/such/path")
    await client.post("/graphql", json={"query": "{ __typename }"})
    text = (await client.get("/metrics")).text
    for name in ("gateway_http_requests_total", "gateway_http_request_duration_seconds_bucket",
                 "gateway_upstream_requests_total", "gateway_outbox_pending"):
        assert name in text, name
    assert 'route="unmatched"' in text and "/no/such/path" not in text  # no label per raw path
    # The outbox backlog is read from the database at scrape time, even where no dispatcher runs.
    assert 'gateway_outbox_pending{system="credit"} 0.0' in text
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0 and check.stdout.strip() == "" and check.stderr.strip() == "", check.stderr


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["database"] == "ok" and body["migrations"] == "current"
    assert body["systems"]["credit"] == "not_configured"


async def test_not_ready_without_migrations(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    app = create_app(Settings(database_url=url, jwt_secret=SECRET, auto_migrate=False, dispatcher=False))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
            ready = await c.get("/readyz")
    assert ready.status_code == 503 and ready.json()["migrations"] == "outdated"


async def test_not_ready_when_database_is_unreachable(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://nobody@127.0.0.1:1/none"  # nothing listens on port 1
    app = create_app(Settings(database_url=url, jwt_secret=SECRET, auto_migrate=False, dispatcher=False))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
            ready = await c.get("/readyz")
            assert (await c.get("/healthz")).status_code == 200
    assert ready.status_code == 503 and ready.json()["database"].startswith("unavailable")


async def test_request_id_reaches_the_upstream_system(db: Database) -> None:
    await load_units(db.sessionmaker)
    from gateway.core.db import transaction
    from gateway.ingest.store import ingest_raw

    async with transaction(db.sessionmaker) as session:
        await ingest_raw(session, [record("RID-1")])
    sim = sim_credit.create_app(token="t")
    with run_in_thread(sim) as credit_url:
        settings = Settings(database_url=db.url, jwt_secret=SECRET, dispatcher=False,
                            credit_url=credit_url, credit_token="t")
        app = create_app(settings)
        token = mint_token(SECRET, "ops-test", "510000", ["reader"])
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
                resp = await c.post(
                    "/graphql",
                    json={"query": '{ complaint(id: "RID-1") { enterprise { uscc creditProfile { name } } } }'},
                    headers={"Authorization": f"Bearer {token}", "X-Request-Id": "trace-me-123"},
                )
                assert resp.headers["X-Request-Id"] == "trace-me-123"
                assert resp.json()["data"]["complaint"]["enterprise"]["uscc"] == USCC
                seen = httpx.get(f"{credit_url}/_sim/requests").json()
    assert any(r["request_id"] == "trace-me-123" for r in seen)


def test_json_logs_carry_the_request_id() -> None:
    token = request_id_var.set("rid-42")
    try:
        line = JsonFormatter().format(
            logging.LogRecord("gateway.test", logging.INFO, __file__, 1, "hello %s", ("world",), None)
        )
    finally:
        request_id_var.reset(token)
    entry = json.loads(line)
    assert entry["msg"] == "hello world" and entry["request_id"] == "rid-42" and entry["level"] == "info"


async def test_graphql_operations_are_counted_by_name_and_outcome(db: Database) -> None:
    from prometheus_client import REGISTRY

    await load_units(db.sessionmaker)
    app = create_app(Settings(database_url=db.url, jwt_secret=SECRET, dispatcher=False))
    token = mint_token(SECRET, "ops-test", "510000", ["reader"])

    def count(outcome: str) -> float:
        return REGISTRY.get_sample_value(
            "gateway_graphql_operations_total", {"operation": "OpsProbe", "outcome": outcome}) or 0.0

    before_ok, before_error = count("ok"), count("error")
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
            auth = {"Authorization": f"Bearer {token}"}
            await c.post("/graphql", json={"query": "query OpsProbe { orgUnit(code: \"510000\") { code } }"},
                         headers=auth)
            await c.post("/graphql", json={"query": "query OpsProbe { kpiReport(unit: \"510000\", "
                                                    "from: \"2024-01-01\", to: \"2024-01-31\") { level } }"},
                         headers=auth)  # a reader may not: no data at all
    assert count("ok") == before_ok + 1
    assert count("error") == before_error + 1


async def test_made_up_operation_names_never_take_a_persisted_operations_label(db: Database) -> None:
    """Persisted operations are labelled by their name, always; made-up names are bounded and churn among
    themselves, so 300 of them neither push a real operation into "other" nor grow the series without end."""
    from prometheus_client import REGISTRY

    from gateway.api.gql.persisted import DEFAULT_DIR, document_hash
    from gateway.core.observability import _MAX_ADHOC_NAMES

    await load_units(db.sessionmaker)
    app = create_app(Settings(database_url=db.url, jwt_secret=SECRET, dispatcher=False))
    auth = {"Authorization": f"Bearer {mint_token(SECRET, 'ops-test', '510000', ['reader'])}"}
    persisted = (DEFAULT_DIR / "ExternalComplaintLookup.graphql").read_text(encoding="utf-8")

    def count(label: str) -> float:
        return REGISTRY.get_sample_value("gateway_graphql_operations_total",
                                         {"operation": label, "outcome": "ok"}) or 0.0

    def labels() -> set[str]:
        return {s.labels["operation"] for m in REGISTRY.collect() if m.name == "gateway_graphql_operations"
                for s in m.samples if s.name.endswith("_total")}

    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
            async def run(body: dict[str, object]) -> None:
                resp = await c.post("/graphql", json=body, headers=auth)
                assert resp.status_code == 200 and "errors" not in resp.json(), resp.text

            for _ in range(5):
                await run({"query": "query SteadyOp { __typename }"})
            steady, lookups, other = count("SteadyOp"), count("ExternalComplaintLookup"), count("other")
            for i in range(300):
                await run({"query": f"query MadeUp{i:03d} {{ __typename }}"})
            await run({"documentId": f"sha256:{document_hash(persisted)}", "variables": {"id": "NONE"}})
            await run({"query": persisted, "variables": {"id": "NONE"}})  # the same text, sent in full
            await run({"query": "query SteadyOp { __typename }"})
            # A made-up query cannot pose as the persisted one.
            await run({"query": "query ExternalComplaintLookup { __typename }"})

    assert count("ExternalComplaintLookup") == lookups + 2
    assert count("SteadyOp") == steady + 1  # in steady use: kept its series through the flood
    assert count("other") == other + 1
    made_up = {label for label in labels() if label.startswith("MadeUp")}
    assert 0 < len(made_up) < _MAX_ADHOC_NAMES
    assert len(labels()) <= _MAX_ADHOC_NAMES + 2 + len(list(DEFAULT_DIR.glob("*.graphql")))


async def test_docs_openapi_and_assets_are_counted_under_their_routes(db: Database) -> None:
    from prometheus_client import REGISTRY

    app = create_app(Settings(database_url=db.url, jwt_secret=SECRET, dispatcher=False))

    def count(route: str, status: str = "200") -> float:
        return REGISTRY.get_sample_value(
            "gateway_http_requests_total", {"method": "GET", "route": route, "status": status}) or 0.0

    routes = ("/docs", "/redoc", "/openapi.json", "/static/docs/{path}", "/static/graphiql/{path}")
    before = {r: count(r) for r in routes}
    unmatched = count("unmatched", "404")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
        for path in ("/docs", "/redoc", "/openapi.json", "/static/docs/swagger-ui.css",
                     "/static/graphiql/graphiql.min.css"):
            assert (await c.get(path)).status_code == 200
        assert (await c.get("/no/such/path")).status_code == 404
    assert all(count(r) == before[r] + 1 for r in routes), {r: count(r) - before[r] for r in routes}
    assert count("unmatched", "404") == unmatched + 1


async def test_openapi_describes_the_rest_routes(db: Database) -> None:
    app = create_app(Settings(database_url=db.url, jwt_secret=SECRET, dispatcher=False))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
        spec = (await c.get("/openapi.json")).json()
    report = spec["paths"]["/api/v1/kpi/report"]["get"]
    params = {p["name"]: p for p in report["parameters"]}
    assert {"unit", "level", "from", "to", "as_of", "scheme", "format"} <= set(params)
    assert params["unit"]["required"] and params["format"]["schema"]["enum"] == ["json", "csv", "xlsx"]
    assert report["security"] == [{"bearer": []}]
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    content = report["responses"]["200"]["content"]
    assert {"application/json", "text/csv"} <= set(content)
    assert content["application/json"]["schema"]["$ref"].endswith("/KpiReport")
    assert {"401", "403", "400"} <= set(report["responses"])
    ingest = spec["paths"]["/api/v1/ingest/complaints"]["post"]
    assert [p["name"] for p in ingest["parameters"]] == ["X-Signature"] and ingest["parameters"][0]["required"]
    body = ingest["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["items"] and body["properties"]["items"]["type"] == "array"
    assert "security" not in ingest  # signed, not a bearer token


def test_with_several_workers_a_full_set_of_names_does_not_evict(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    """Under `serve --workers N` series live in files no removal reaches: new names become "other" there."""
    from gateway.core import observability

    monkeypatch.setattr(observability, "_adhoc_uses", {})
    names = [f"Worker{i}" for i in range(observability._MAX_ADHOC_NAMES)]
    assert [observability.operation_label(n) for n in names] == names
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert observability.operation_label("OneMore") == "other"
    assert observability.operation_label("Worker0") == "Worker0"  # a known name keeps its label
    assert observability.operation_label("OneMore", persisted="CreditFlagPull") == "CreditFlagPull"
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    assert observability.operation_label("OneMore") == "OneMore"  # one process: the least used gives way
    assert "Worker1" not in observability._adhoc_uses and "Worker0" in observability._adhoc_uses
