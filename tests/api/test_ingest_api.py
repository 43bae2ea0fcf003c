"""The complaint platform's signed push: HMAC accept/reject, malformed and oversized bodies."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from gateway.api.app import create_app
from gateway.complaints.models import Complaint
from gateway.core.settings import Settings
from tests.conftest import Database
from tests.factories import load_units, record

SECRET = "push-secret-for-tests"
URL = "/api/v1/ingest/complaints"


@pytest.fixture
async def client(db: Database) -> AsyncIterator[httpx.AsyncClient]:
    await load_units(db.sessionmaker)
    settings = Settings(database_url=db.url, ingest_secret=SECRET, jwt_secret="x", ingest_max_bytes=64 * 1024)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
            yield c


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Signature": f"sha256={sig}", "Content-Type": "application/json"}


async def count(db: Database) -> int:
    async with db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Complaint)) or 0)


async def post(client: httpx.AsyncClient, payload: Any, secret: str = SECRET) -> httpx.Response:
    body = json.dumps(payload, ensure_ascii=False).encode()
    return await client.post(URL, content=body, headers=signed(body, secret))


async def test_signed_push_stores_and_reports_rejects(client: httpx.AsyncClient, db: Database) -> None:
    resp = await post(client, {"items": [record("P-1"), record("P-2", kind="NOPE"), record("P-3")]})
    assert resp.status_code == 200
    body = resp.json()
    assert body["stored"] == 2
    assert len(body["rejected"]) == 1
    assert body["rejected"][0]["index"] == 1 and body["rejected"][0]["id"] == "P-2"
    assert "kind:" in body["rejected"][0]["reason"]
    assert await count(db) == 2


@pytest.mark.parametrize("header", [None, "sha256=", "sha256=" + "0" * 64, "md5=abc"])
async def test_wrong_or_missing_signature_stores_nothing(client: httpx.AsyncClient, db: Database,
                                                         header: str | None) -> None:
    body = json.dumps({"items": [record("S-1")]}).encode()
    headers = {"Content-Type": "application/json"} | ({"X-Signature": header} if header else {})
    resp = await client.post(URL, content=body, headers=headers)
    assert resp.status_code == 401
    assert await count(db) == 0


async def test_signature_with_other_secret_is_refused(client: httpx.AsyncClient, db: Database) -> None:
    resp = await post(client, {"items": [record("S-2")]}, secret="not-the-secret")
    assert resp.status_code == 401 and await count(db) == 0


async def test_body_changed_after_signing_is_refused(client: httpx.AsyncClient, db: Database) -> None:
    body = json.dumps({"items": [record("S-3")]}).encode()
    headers = signed(body)
    resp = await client.post(URL, content=body.replace(b"S-3", b"S-4"), headers=headers)
    assert resp.status_code == 401 and await count(db) == 0


@pytest.mark.parametrize("body", [b"{not json", b"[1,2]", b'{"items": 3}', b'{"things": []}', b"\xff\xfe"])
async def test_malformed_bodies(client: httpx.AsyncClient, db: Database, body: bytes) -> None:
    resp = await client.post(URL, content=body, headers=signed(body))
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "BAD_USER_INPUT"


async def test_huge_body_is_413(client: httpx.AsyncClient, db: Database) -> None:
    body = json.dumps({"items": [record("H-1", summary="x" * 3000)] * 40}).encode()
    assert len(body) > 64 * 1024
    resp = await client.post(URL, content=body, headers=signed(body))
    assert resp.status_code == 413 and await count(db) == 0


async def test_too_many_items_is_413(client: httpx.AsyncClient, db: Database) -> None:
    body = json.dumps({"items": [{}] * 1001}).encode()
    resp = await client.post(URL, content=body, headers=signed(body))
    assert resp.status_code == 413


async def test_push_off_without_secret(db: Database) -> None:
    app = create_app(Settings(database_url=db.url, jwt_secret="x"))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
            body = b'{"items": []}'
            resp = await c.post(URL, content=body, headers=signed(body))
    assert resp.status_code == 404


async def test_health(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"
