"""GraphQL over HTTP: media types, status codes, methods, authentication."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt

from gateway.api.gql.schema import sdl
from tests.api.gql.conftest import Gateway, token

GR = "application/graphql-response+json"
Q = '{ complaint(id: "R-STATION") { id } }'


async def _post(gw: Gateway, body: Any, accept: str | None = GR, bearer: str | None = None,
                content_type: str = "application/json") -> Any:
    headers = {"Content-Type": content_type, "Authorization": f"Bearer {bearer or token()}"}
    if accept is not None:
        headers["Accept"] = accept
    return await gw.client.post("/graphql", content=body if isinstance(body, str) else json.dumps(body),
                                headers=headers)


async def test_post_answers_in_the_negotiated_media_type(gw: Gateway) -> None:
    for accept, media in ((GR, GR), ("application/json", "application/json"), (None, "application/json"),
                          ("*/*", "application/json"),
                          (f"application/json;q=0.5, {GR}", GR)):
        resp = await _post(gw, {"query": Q}, accept=accept)
        assert resp.status_code == 200, (accept, resp.text)
        assert resp.headers["content-type"].startswith(media), accept
        assert resp.json() == {"data": {"complaint": {"id": "R-STATION"}}}


async def test_unacceptable_accept_is_406(gw: Gateway) -> None:
    resp = await _post(gw, {"query": Q}, accept="text/xml")
    assert resp.status_code == 406


async def test_request_errors_are_400_for_graphql_response_json_and_200_for_json(gw: Gateway) -> None:
    for query, code in (("{ complaint(id: ", "GRAPHQL_PARSE_FAILED"),
                        ("{ complaint(id: 1) { nope } }", "GRAPHQL_VALIDATION_FAILED")):
        resp = await _post(gw, {"query": query}, accept=GR)
        assert resp.status_code == 400
        assert "data" not in resp.json()
        assert resp.json()["errors"][0]["extensions"]["code"] == code
        resp = await _post(gw, {"query": query}, accept="application/json")
        assert resp.status_code == 200
        assert resp.json()["errors"][0]["extensions"]["code"] == code


async def test_bad_variables_are_a_request_error(gw: Gateway) -> None:
    resp = await _post(gw, {"query": "query($id: ID!) { complaint(id: $id) { id } }", "variables": {}})
    assert resp.status_code == 400
    assert resp.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_malformed_http_requests_are_4xx(gw: Gateway) -> None:
    assert (await _post(gw, "{not json")).status_code == 400
    assert (await _post(gw, [1, 2])).status_code == 400
    assert (await _post(gw, {"query": 12})).status_code == 400
    assert (await _post(gw, {"query": Q, "variables": "[1]"})).status_code == 400
    assert (await _post(gw, {})).status_code == 400
    assert (await _post(gw, Q, content_type="text/plain")).status_code == 415


async def test_get_runs_queries(gw: Gateway) -> None:
    resp = await gw.client.get("/graphql", params={"query": 'query($id: ID!) { complaint(id: $id) { id } }',
                                                   "variables": json.dumps({"id": "R-COUNTY"})},
                               headers={"Accept": GR, "Authorization": f"Bearer {token()}"})
    assert resp.status_code == 200
    assert resp.json()["data"]["complaint"]["id"] == "R-COUNTY"


async def test_no_mutation_over_get(gw: Gateway) -> None:
    resp = await gw.client.get("/graphql", params={"query": 'mutation { suggestCaseLead(complaintId: "R-STATION") '
                                                            '{ leadId } }'},
                               headers={"Accept": GR, "Authorization": f"Bearer {token(roles='operator')}"})
    assert resp.status_code == 405
    assert resp.headers["allow"] == "POST"
    assert gw.sims["enforcement"].total_requests() == 0


async def test_browser_get_without_query_gets_the_ide(gw: Gateway) -> None:
    resp = await gw.client.get("/graphql", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "graphiql" in resp.text.lower()


async def test_field_errors_keep_200_with_data(gw: Gateway) -> None:
    # kpiReport needs the evaluator role: a field error, not a request error.
    a = await gw.gql('{ complaint(id: "R-STATION") { id } orgUnit(code: "510800") { code } }', roles="")
    assert a.status == 200
    assert a.data == {"complaint": None, "orgUnit": None}
    assert a.codes() == ["FORBIDDEN", "FORBIDDEN"]
    assert {tuple(e["path"]) for e in a.errors} == {("complaint",), ("orgUnit",)}


async def test_missing_forged_and_expired_tokens_are_401(gw: Gateway) -> None:
    forged = jwt.encode({"sub": "x", "unit": "100000", "roles": ["reader"], "exp": int(time.time()) + 600},
                        "another-secret-of-sufficient-length!!", algorithm="HS256")
    expired = jwt.encode({"sub": "x", "unit": "100000", "roles": ["reader"], "exp": int(time.time()) - 10},
                         "graphql-test-secret-0123456789abcdef", algorithm="HS256")
    for headers in ({}, {"Authorization": f"Bearer {forged}"}, {"Authorization": f"Bearer {expired}"},
                    {"Authorization": "Basic abc"}):
        for accept in (GR, "application/json"):
            resp = await gw.client.post("/graphql", content=json.dumps({"query": Q}),
                                        headers={"Content-Type": "application/json", "Accept": accept, **headers})
            assert resp.status_code == 401, headers
            assert resp.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
            assert "data" not in resp.json()


async def test_unknown_unit_in_token_is_forbidden(gw: Gateway) -> None:
    a = await gw.gql(Q, unit="999999")
    assert a.status == 403
    assert a.codes() == ["FORBIDDEN"]


async def test_request_id_is_passed_upstream(gw: Gateway) -> None:
    await gw.gql('{ complaint(id: "R-STATION") { cases { caseNo } } }', headers={"X-Request-Id": "trace-42"})
    assert [r["request_id"] for r in gw.sims["enforcement"].requests()] == ["trace-42"]


def test_schema_file_is_what_gateway_schema_prints() -> None:
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "graphql" / "schema.graphql"
    assert path.read_text(encoding="utf-8") == sdl(), "run: gateway schema > graphql/schema.graphql"


def test_graphql_folder_is_not_a_python_package() -> None:
    from pathlib import Path

    folder = Path(__file__).resolve().parents[3] / "graphql"
    assert not list(folder.rglob("*.py"))


def test_gateway_schema_command_prints_the_file() -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    gateway = Path(sys.executable).parent / "gateway"  # the installed console script
    out = subprocess.run([str(gateway), "schema"], capture_output=True, text=True, cwd=root, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == (root / "graphql" / "schema.graphql").read_text(encoding="utf-8")
