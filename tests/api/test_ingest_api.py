"""The complaint platform's signed push: HMAC accept/reject, malformed and oversized bodies."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
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


def signed(body: bytes, secret: str = SECRET, t: int | None = None) -> dict[str, str]:
    t = int(time.time()) if t is None else t
    sig = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Signature": f"t={t},v1={sig}", "Content-Type": "application/json"}


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


async def test_the_1_0_signature_form_is_refused(client: httpx.AsyncClient, db: Database) -> None:
    """`sha256=<HMAC of the body>` signs no time: it could be replayed forever (interfaces.md 1.1)."""
    body = json.dumps({"items": [record("S-10")]}).encode()
    old = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    resp = await client.post(URL, content=body, headers={"X-Signature": f"sha256={old}",
                                                          "Content-Type": "application/json"})
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "UNAUTHENTICATED"
    assert await count(db) == 0


# 30 s beyond the 300 s tolerance: a loaded machine may take seconds between signing and checking.
@pytest.mark.parametrize("skew", [-330, 330, -86400 * 365, 10**11])
async def test_a_timestamp_outside_the_tolerance_is_refused(client: httpx.AsyncClient, db: Database,
                                                            skew: int) -> None:
    body = json.dumps({"items": [record("S-11")]}).encode()
    resp = await client.post(URL, content=body, headers=signed(body, t=int(time.time()) + skew))
    assert resp.status_code == 401 and "timestamp" in resp.json()["error"]["message"]
    assert await count(db) == 0


@pytest.mark.parametrize("skew", [-290, 0, 290])
async def test_a_timestamp_inside_the_tolerance_is_accepted(client: httpx.AsyncClient, db: Database,
                                                            skew: int) -> None:
    body = json.dumps({"items": [record("S-12")]}).encode()
    resp = await client.post(URL, content=body, headers=signed(body, t=int(time.time()) + skew))
    assert resp.status_code == 200 and await count(db) == 1


async def test_the_tolerance_is_configurable(db: Database) -> None:
    await load_units(db.sessionmaker)
    settings = Settings(database_url=db.url, ingest_secret=SECRET, jwt_secret="x", ingest_tolerance_s=5)
    app = create_app(settings)
    body = json.dumps({"items": [record("S-13")]}).encode()
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
            late = await c.post(URL, content=body, headers=signed(body, t=int(time.time()) - 60))
            fresh = await c.post(URL, content=body, headers=signed(body))
    assert late.status_code == 401 and fresh.status_code == 200


def _mac(t: str, body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()


async def test_signature_header_variants(client: httpx.AsyncClient, db: Database) -> None:
    body = json.dumps({"items": [record("S-14")]}).encode()
    now = str(int(time.time()))
    bad = [
        f"v1={_mac(now, body)}",  # no t
        f"t={now}",  # no v1
        f"t={now},v1={_mac(str(int(now) - 1), body)}",  # the HMAC of another time: t was changed
        f"t=+{now},v1={_mac('+' + now, body)}",  # t is digits only
        f"t={now}.5,v1={_mac(now + '.5', body)}",
        f"t=１２３,v1={_mac('１２３', body)}",  # not ASCII digits
        f"t={now},v1=é{_mac(now, body)[1:]}",
        "t=,v1=",
        "garbage",
    ]
    for header in bad:
        resp = await client.post(URL, content=body, headers={"X-Signature": header.encode("utf-8"),
                                                              "Content-Type": "application/json"})
        assert resp.status_code == 401, header
    assert await count(db) == 0
    # Upper-case hex, spaces, and a second v1 (a platform rotating its key) are fine.
    good = f"t={now}, v1={_mac(now, body, 'old-key')}, v1={_mac(now, body).upper()}"
    resp = await client.post(URL, content=body, headers={"X-Signature": good, "Content-Type": "application/json"})
    assert resp.status_code == 200 and await count(db) == 1


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
