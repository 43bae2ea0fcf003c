"""Bearer tokens whose claims have the wrong type are refused (HTTP 401, UNAUTHENTICATED), whatever PyJWT's
lenient int() would make of them: a string `exp` is the example; other time claims, identity claims and
numbers JSON does not have are the kind. Signed with the right secret, so only the claims are wrong."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.api.app import create_app
from gateway.core.auth import AuthError, decode_token, mint_token
from gateway.core.settings import Settings
from tests.conftest import Database
from tests.factories import load_units

SECRET = "auth-test-secret-0123456789abcdef0123"
LATER = int(time.time()) + 3600


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(payload: str, secret: str = SECRET) -> str:
    """An HS256 token over this exact payload text (so that numbers JSON lacks, like NaN, can be in it)."""
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(payload.encode())
    return head + "." + b64(hmac.new(secret.encode(), head.encode(), hashlib.sha256).digest())


def claims(**overrides: object) -> str:
    base: dict[str, object] = {"sub": "tester", "unit": "510000", "roles": ["reader"], "exp": LATER}
    base.update(overrides)
    return json.dumps({k: v for k, v in base.items() if v is not DROP})


DROP = object()

MALFORMED = {
    "exp string of digits": claims(exp=str(LATER)),
    "exp string with spaces": claims(exp=f" {LATER} "),
    "exp word": claims(exp="tomorrow"),
    "exp true": claims(exp=True),
    "exp null": claims(exp=None),
    "exp list": claims(exp=[LATER]),
    "exp object": claims(exp={"at": LATER}),
    "exp missing": claims(exp=DROP),
    "exp NaN": claims().replace(str(LATER), "NaN"),
    "exp Infinity": claims().replace(str(LATER), "Infinity"),
    "exp 1e400": claims().replace(str(LATER), "1e400"),
    "exp 5000 digits": claims().replace(str(LATER), "9" * 5000),
    "nbf string": claims(nbf="0"),
    "nbf true": claims(nbf=False),
    "iat string": claims(iat=str(int(time.time()))),
    "iat list": claims(iat=[1]),
    "sub number": claims(sub=42),
    "sub empty": claims(sub=""),
    "unit list": claims(unit=["510000"]),
    "unit null": claims(unit=None),
    "roles string": claims(roles="reader"),
    "roles with a number": claims(roles=["reader", 1]),
    "claims a list": json.dumps([{"exp": LATER}]),
    "claims a string": json.dumps("exp"),
    "claims not json": "{exp: 1",
    "expired": claims(exp=int(time.time()) - 10),
}


@pytest.mark.parametrize("payload", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_claims_are_refused(payload: str) -> None:
    with pytest.raises(AuthError):
        decode_token(SECRET, signed(payload))


@pytest.mark.parametrize("exp", [LATER, LATER + 0.5, 10**12], ids=["an hour on", "a fraction", "year 33658"])
def test_well_formed_tokens_still_pass(exp: float) -> None:
    principal = decode_token(SECRET, signed(claims(exp=exp, nbf=0, iat=int(time.time()))))
    assert (principal.sub, principal.unit, principal.roles) == ("tester", "510000", frozenset({"reader"}))
    assert decode_token(SECRET, mint_token(SECRET, "a", "510000", ["reader"])).sub == "a"


@pytest.fixture
async def client(db: Database) -> AsyncIterator[httpx.AsyncClient]:
    await load_units(db.sessionmaker)
    app = create_app(Settings(database_url=db.url, jwt_secret=SECRET, dispatcher=False))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
            yield c


async def test_a_string_exp_is_unauthenticated_over_http(client: httpx.AsyncClient) -> None:
    query = {"query": '{ orgUnit(code: "510000") { code } }'}
    good = await client.post("/graphql", json=query, headers={"Authorization": f"Bearer {signed(claims())}"})
    assert good.status_code == 200 and good.json()["data"]["orgUnit"]["code"] == "510000"
    for name in ("exp string of digits", "exp true", "exp 1e400", "iat string", "claims a list"):
        bearer = {"Authorization": f"Bearer {signed(MALFORMED[name])}"}
        resp = await client.post("/graphql", json=query, headers=bearer)
        assert resp.status_code == 401, name
        assert [e["extensions"]["code"] for e in resp.json()["errors"]] == ["UNAUTHENTICATED"], name
        report = await client.get("/api/v1/kpi/report", headers=bearer,
                                  params={"unit": "510000", "from": "2024-01-01", "to": "2024-01-31"})
        assert report.status_code == 401, name
