"""Upstream bodies stay inside (interfaces.md 1.1): whatever an external system answers — a refusal whose body
holds a database host and password, a server error page, a broken 2xx, a hostile header — the caller's
error names the system, the HTTP status and the request id; the body goes to the log under that id."""

from __future__ import annotations

import base64
import json
import logging

import pytest

from tests.api.gql.conftest import Gateway, token

SECRET = "FATAL: password authentication failed for user credit, dsn=postgres://credit:hunter2@db-7.internal:5432"
LEAKS = ("hunter2", "db-7.internal", "FATAL")

QUERY = '{ complaint(id: "R-STATION") { id summary enterprise { uscc creditProfile { name } } } }'


def canned(status: int, body: str, headers: list[tuple[str, str]] | None = None) -> dict[str, object]:
    return {"status": status, "headers": headers or [], "body_b64": base64.b64encode(body.encode()).decode()}


# status answered -> (code, status named in the message)
ANSWERS = {
    "422": (canned(422, json.dumps({"error": SECRET})), "UPSTREAM_ERROR", 422),
    "400": (canned(400, SECRET), "UPSTREAM_ERROR", 400),
    "409 html": (canned(409, f"<html><pre>{SECRET}</pre></html>", [("Content-Type", "text/html")]),
                 "UPSTREAM_ERROR", 409),
    "500": (canned(500, SECRET), "UPSTREAM_UNAVAILABLE", 500),
    "503 with header": (canned(503, SECRET, [("Retry-After", "Mon, 01 Jan 99999999999 00:00:00 GMT"),
                                             ("X-Debug", SECRET)]), "UPSTREAM_UNAVAILABLE", 503),
    "200 broken": (canned(200, json.dumps({"enterprises": SECRET})), "UPSTREAM_ERROR", 200),
}


@pytest.mark.parametrize("case", ANSWERS.values(), ids=ANSWERS.keys())
async def test_an_upstream_body_never_reaches_a_reader(
    gw: Gateway, case: tuple[dict[str, object], str, int], caplog: pytest.LogCaptureFixture
) -> None:
    answer, code, status = case
    gw.sims["credit"].faults(outage="canned", canned=[answer])
    with caplog.at_level(logging.INFO, "connectors"):
        resp = await gw.client.post(
            "/graphql", json={"query": QUERY},
            headers={"Authorization": f"Bearer {token('100000', 'reader')}", "X-Request-Id": "req-upstream-leak-1"},
        )
    text = resp.text
    assert resp.status_code == 200
    body = resp.json()
    assert body["data"]["complaint"]["id"] == "R-STATION" and body["data"]["complaint"]["summary"]
    assert body["data"]["complaint"]["enterprise"]["creditProfile"] is None  # only the failed field is null
    [error] = body["errors"]
    assert error["extensions"] == {"code": code, "system": "credit"}
    assert error["path"] == ["complaint", "enterprise", "creditProfile"]
    # Names the system, the status and the request id; quotes nothing of the body or headers.
    assert error["message"].startswith("credit: ") and f"HTTP {status}" in error["message"]
    assert "req-upstream-leak-1" in error["message"]
    assert not [leak for leak in LEAKS if leak in text]
    # The body is in the log, truncated, under the same request id, for operators.
    logged = [r for r in caplog.records if getattr(r, "request_id", None) == "req-upstream-leak-1"]
    assert logged and any("hunter2" in r.getMessage() for r in logged)
    assert all(len(r.getMessage()) < 1200 for r in logged)


async def test_a_long_body_is_logged_truncated(gw: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    gw.sims["credit"].faults(outage="canned", canned=[canned(422, "x" * 100_000 + "\n" + SECRET)])
    with caplog.at_level(logging.INFO, "connectors"):
        answer = await gw.gql(QUERY)
    assert answer.codes() == ["UPSTREAM_ERROR"]
    [record] = [r for r in caplog.records if "HTTP 422" in r.getMessage()]
    message = record.getMessage()
    assert "x" * 400 in message and len(message) < 1200 and "hunter2" not in message
