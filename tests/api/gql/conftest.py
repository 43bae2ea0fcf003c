"""The gateway in-process (httpx over ASGI) against the four simulators running as real servers on loopback,
on a fresh database per test (SQLite, and PostgreSQL when GATEWAY_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from connectors.simulators import FACTORIES, run_in_thread  # noqa: E402
from connectors.simulators.control import SimControl  # noqa: E402
from gateway.api.app import create_app  # noqa: E402
from gateway.core.auth import mint_token  # noqa: E402
from gateway.core.db import transaction  # noqa: E402
from gateway.core.settings import Settings  # noqa: E402
from gateway.flags.models import IncidentLink
from gateway.ingest.store import ingest_raw  # noqa: E402
from gateway.ingest.units_file import import_units  # noqa: E402
from tests.api.gql.gql_support import (  # noqa: E402
    CALLERS,
    PLACES,
    SECRET,
    SIM_TOKEN,
    UNITS_CSV,
    USCC_A,
    case_for,
    incident_for,
    world,
)
from tests.conftest import BACKENDS  # noqa: E402
from tests.loopback import run_with_sessionmaker, scratch_database, serve  # noqa: E402

SYSTEMS = ("complaints", "enforcement", "credit", "emergency")


class Sim(SimControl):
    def seed(self, body: dict[str, Any]) -> Any:
        return self.post("/_sim/seed", body)


@pytest.fixture(scope="session")
def sims() -> Iterator[dict[str, Sim]]:
    with ExitStack() as stack:
        out = {}
        for system in SYSTEMS:
            args: list[Any] = [[]] if system == "complaints" else []
            url = stack.enter_context(run_in_thread(FACTORIES[system](*args, token=SIM_TOKEN, seed=1)))
            out[system] = Sim(system, url)
        # The credit simulator builds its place tables on first use: not a cost any test should time.
        httpx.get(f"{out['credit'].url}/api/v1/enterprises", params={"uscc": USCC_A},
                  headers={"Authorization": f"Bearer {SIM_TOKEN}"}, timeout=30).raise_for_status()
        yield out
        for sim in out.values():
            sim.http.close()


@pytest.fixture(autouse=True)
def _clean_sims(sims: dict[str, Sim]) -> None:
    for sim in sims.values():
        sim.reset()


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    headers: httpx.Headers

    @property
    def data(self) -> Any:
        return self.body.get("data")

    @property
    def errors(self) -> list[dict[str, Any]]:
        return list(self.body.get("errors") or [])

    def codes(self) -> list[str]:
        return [e.get("extensions", {}).get("code") for e in self.errors]


def token(unit: str = "100000", roles: str = "reader", ttl: int = 600, sub: str = "tester") -> str:
    return mint_token(SECRET, sub, unit, [r for r in roles.split(",") if r], ttl)


@dataclass
class Gateway:
    client: httpx.AsyncClient
    sims: dict[str, Sim]
    db: Any
    app: Any

    async def gql(self, query: str | None, variables: dict[str, Any] | None = None, *, unit: str = "100000",
                  roles: str = "reader", bearer: str | None = None, headers: dict[str, str] | None = None,
                  sub: str = "tester", **extra: Any) -> Answer:
        body: dict[str, Any] = {**extra}
        if query is not None:
            body["query"] = query
        if variables is not None:
            body["variables"] = variables
        bearer = bearer or token(unit, roles, sub=sub)
        h = {"Accept": "application/graphql-response+json", "Authorization": f"Bearer {bearer}"}
        h.update(headers or {})
        resp = await self.client.post("/graphql", content=json.dumps(body), headers={
            "Content-Type": "application/json", **h})
        return Answer(resp.status_code, resp.json(), resp.headers)

    async def as_caller(self, caller: str, query: str, variables: dict[str, Any] | None = None,
                        roles: str = "reader") -> Answer:
        return await self.gql(query, variables, unit=CALLERS[caller], roles=roles)


def gateway_settings(db_url: str, sims: dict[str, Sim], **overrides: Any) -> Settings:
    urls = {f"{s}_url": sims[s].url for s in SYSTEMS}
    tokens = {f"{s}_token": SIM_TOKEN for s in SYSTEMS}
    values: dict[str, Any] = dict(
        database_url=db_url, jwt_secret=SECRET, auto_migrate=False, dispatcher=False,
        connector_timeout_s=1.0, connector_attempts=2, connector_budget_s=2.0, circuit_min_calls=1000,
        **urls, **tokens,
    )
    values.update(overrides)
    return Settings(**values)


async def seed_world(db: Any, sims: dict[str, Sim]) -> None:
    async with transaction(db.sessionmaker) as session:
        await import_units(session, UNITS_CSV)
        result = await ingest_raw(session, world())
        assert not result.rejected, result.rejected
        now = datetime.now(UTC)
        session.add_all(IncidentLink(complaint_id=rid, incident_id=f"INC-{rid}", created_at=now) for rid in PLACES)
    sims["enforcement"].seed({"cases": [case_for(rid, unit) for rid, unit in PLACES.items()]})
    sims["emergency"].seed({"incidents": [incident_for(rid) for rid in PLACES]})


@pytest.fixture
async def gw(db: Any, sims: dict[str, Sim], request: pytest.FixtureRequest) -> AsyncIterator[Gateway]:
    await seed_world(db, sims)
    overrides = getattr(request, "param", {})
    app = create_app(gateway_settings(db.url, sims, **overrides))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield Gateway(client, sims, db, app)


@asynccontextmanager
async def another_gateway(gw: Gateway, **overrides: Any) -> AsyncIterator[Gateway]:
    """A second gateway on the same database and simulators, with some settings changed."""
    app = create_app(gateway_settings(gw.db.url, gw.sims, **overrides))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway"
    ) as client:
        yield Gateway(client, gw.sims, gw.db, app)


@contextmanager
def fresh_sim(system: str) -> Iterator[Sim]:
    """A simulator of its own for one test: for writes whose idempotency ledger must start empty."""
    args: list[Any] = [[]] if system == "complaints" else []
    with run_in_thread(FACTORIES[system](*args, token=SIM_TOKEN, seed=1)) as url:
        sim = Sim(system, url)
        try:
            yield sim
        finally:
            sim.http.close()


@pytest.fixture(scope="module", params=BACKENDS)
def live_url(request: pytest.FixtureRequest, sims: dict[str, Sim],
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The seeded world behind one gateway served on loopback, per test module and backend: for suites of
    many requests that only read, or write what no other test reads (hostile input, property tests)."""
    with scratch_database(request.param, tmp_path_factory.mktemp("live")) as url:
        run_with_sessionmaker(url, lambda sm: seed_world(SimpleNamespace(sessionmaker=sm), sims))
        with serve(gateway_settings(url, sims)) as base:
            yield base
