"""`creditFlags` and `alerts` through the real GraphQL endpoint (the app over ASGI), with tokens and
jurisdiction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from gateway.api.app import create_app
from gateway.core.auth import mint_token
from gateway.core.settings import Settings
from tests.conftest import Database
from tests.flags.support import rec, store

SECRET = "flags-graphql-secret-of-32-bytes-at-least"

FLAGS = """query($first: Int, $after: String) { creditFlags(first: $first, after: $after) {
  edges { cursor node { flagId uscc reason severity complaintIds issuedBy deliveryState deliveredSeverity } }
  pageInfo { hasNextPage endCursor } } }"""
ALERTS = "query($unit: String) { alerts(unit: $unit) { unitCode category day count threshold } }"


@pytest.fixture
async def client(world: Database) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=world.url, jwt_secret=SECRET, dispatcher=False)  # type: ignore[arg-type]
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway"
    ) as http:
        yield http


async def ask(client: httpx.AsyncClient, query: str, caller: str, roles: list[str], **variables: Any) -> Any:
    token = mint_token(SECRET, "tester", caller, roles)
    resp = await client.post("/graphql", json={"query": query, "variables": variables},
                             headers={"Authorization": f"Bearer {token}"})
    return resp.json()


async def test_credit_flags_for_the_credit_role_within_its_jurisdiction(
    world: Database, client: httpx.AsyncClient
) -> None:
    await store(world, [rec(f"G{i}", "2024-03-16T10:00:00+08:00", urgency="CRITICAL", category="FOOD",
                            kind="INQUIRY", unit="510802001" if i < 3 else "510104001") for i in range(5)])
    province = await ask(client, FLAGS, "510000", ["credit"], first=2)
    conn = province["data"]["creditFlags"]
    assert len(conn["edges"]) == 2 and conn["pageInfo"]["hasNextPage"]
    rest = await ask(client, FLAGS, "510000", ["credit"], first=10, after=conn["pageInfo"]["endCursor"])
    nodes = [e["node"] for e in conn["edges"] + rest["data"]["creditFlags"]["edges"]]
    assert len({n["flagId"] for n in nodes}) == 5
    assert {(n["reason"], n["severity"], n["deliveryState"], n["deliveredSeverity"]) for n in nodes} == {
        ("CRITICAL_SAFETY", "HIGH", "PENDING", None)
    }
    county = await ask(client, FLAGS, "510802", ["credit"], first=10)
    assert sorted(e["node"]["complaintIds"][0] for e in county["data"]["creditFlags"]["edges"]) == ["G0", "G1", "G2"]
    refused = await ask(client, FLAGS, "510000", ["reader"], first=10)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_alerts_field_is_jurisdiction_scoped(world: Database, client: httpx.AsyncClient) -> None:
    start = date(2024, 3, 1)
    day = start + timedelta(days=30)
    raws = [rec(f"Q{d}", f"{start + timedelta(days=d)}T09:00:00+08:00", kind="INQUIRY", category="DRUG")
            for d in range(30)]
    raws += [rec(f"P{i}", f"{day}T09:00:00+08:00", kind="INQUIRY", category="DRUG") for i in range(12)]
    await store(world, raws)
    city = await ask(client, ALERTS, "510800", ["reader"])
    assert city["data"]["alerts"] == [
        {"unitCode": "510802", "category": "DRUG", "day": day.isoformat(), "count": 12, "threshold": 10}
    ]
    assert (await ask(client, ALERTS, "510100", ["reader"]))["data"]["alerts"] == []  # another city
    assert (await ask(client, ALERTS, "510800", ["reader"], unit="510811"))["data"]["alerts"] == []
