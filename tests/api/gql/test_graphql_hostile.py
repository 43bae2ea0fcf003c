"""Requests that used to end in HTTP 500 or `INTERNAL` (interfaces.md 1.1: no input may), and inputs the
database or JSON cannot hold (records.md 1.1), sent to the gateway served on loopback: deep JSON before any
authentication, lone surrogates and U+0000 in every part of a request, explicit nulls for arguments with
defaults, cursors that smuggle text. Both databases."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from conftest import token


@pytest.fixture
async def live(live_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_url, timeout=60) as client:
        yield client


def auth(roles: str = "reader", unit: str = "100000") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(unit, roles)}", "Accept": "application/graphql-response+json"}


async def post_raw(client: httpx.AsyncClient, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return await client.post("/graphql", content=body, headers={"Content-Type": "application/json",
                                                                **(auth() if headers is None else headers)})


async def gql(client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None,
              roles: str = "reader") -> httpx.Response:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()  # ASCII: surrogates escaped
    return await post_raw(client, body, auth(roles))


def codes(resp: httpx.Response) -> list[str]:
    body = orjson.loads(resp.content)  # strict: the answer itself is valid JSON
    return [e["extensions"]["code"] for e in body.get("errors", [])]


# ------------------------------------------------------------------------------------------ before auth


@pytest.mark.parametrize("with_token", [False, True])
async def test_100000_nested_arrays_in_variables(live: httpx.AsyncClient, with_token: bool) -> None:
    """The issue's example: a RecursionError before any authentication."""
    body = b'{"query": "{ __typename }", "variables": {"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    resp = await post_raw(live, body, auth() if with_token else {"Accept": "application/json"})
    assert resp.status_code == 400 and codes(resp) == ["BAD_USER_INPUT"]
    assert "nests too deep" in resp.json()["errors"][0]["message"]


@pytest.mark.parametrize("depth", [63, 64, 65, 1000, 1025])
async def test_nesting_is_bounded_below_what_any_walker_can_take(live: httpx.AsyncClient, depth: int) -> None:
    inner = "[" * (depth - 2) + "]" * (depth - 2)  # the body and `variables` are two of the levels
    body = ('{"query": "{ __typename }", "variables": {"x": ' + inner + "}}").encode()
    resp = await post_raw(live, body)
    ok = depth <= 64
    assert resp.status_code == (200 if ok else 400), resp.text
    assert codes(resp) == ([] if ok else ["BAD_USER_INPUT"])


@pytest.mark.parametrize("field", ["operationName", "documentId", "query"])
@pytest.mark.parametrize("text", ["\\ud800", "\\udfff", "a\\ud800b", "\\u0000"])
async def test_lone_surrogates_and_nul_in_request_strings(live: httpx.AsyncClient, field: str, text: str) -> None:
    """The issue's example: an operationName or documentId holding a lone surrogate was a 500."""
    body = ('{"query": "{ __typename }", "' + field + '": "' + text + '"}').encode()
    resp = await post_raw(live, body)
    assert resp.status_code == 400 and codes(resp) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize("param", ["operationName", "documentId", "query", "variables"])
async def test_nul_in_get_parameters(live: httpx.AsyncClient, param: str) -> None:
    params = {"query": "{ __typename }", param: '{"a": "\x00"}' if param == "variables" else "x\x00y"}
    resp = await live.get("/graphql", params=params, headers=auth())
    assert resp.status_code == 400 and codes(resp) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize("body", [b'{"query": "{ __typename }", "variables": {"x": NaN}}',
                                  b'{"query": "{ __typename }", "variables": {"x": -Infinity}}',
                                  b'{"query": "{ __typename }", "variables": {"x": 1e999}}',
                                  b'{"query": "{ __typename }", "variables": {"x": "\\u0000"}}',
                                  b'{"query": "{ __typename }", "variables": {"x\\u0000": 1}}',
                                  b'{"query": "{ __typename }", "extensions": {"x": "\\ud800"}}',
                                  b'{"query": "{ __typename }"} {}',
                                  b'\xef\xbb\xbf{"query": "{ __typename }"}',
                                  b'{"query": "\xff"}'])
async def test_bodies_json_cannot_hold(live: httpx.AsyncClient, body: bytes) -> None:
    resp = await post_raw(live, body)
    assert resp.status_code == 400 and codes(resp) == ["BAD_USER_INPUT"], resp.text


# ------------------------------------------------------------------------------------ explicit nulls


NULL_FIRST = {
    "complaints": ("{ complaints(first: null) { totalCount nodes { id } } }", "complaints", "nodes"),
    "creditFlags": ("{ creditFlags(first: null) { edges { cursor } pageInfo { hasNextPage } } }",
                    "creditFlags", "edges"),
    "alerts": ("{ alerts(first: null) { alertId unitCode } }", "alerts", None),
    "auditLog": ("{ auditLog(first: null) { nodes { complaintId } } }", "auditLog", "nodes"),
    "Enterprise.complaints": ('{ enterprise(uscc: "91110000802100433B") { complaints(first: null) '
                              "{ totalCount nodes { id } } } }", "enterprise", None),
}


@pytest.mark.parametrize("name", sorted(NULL_FIRST))
async def test_an_explicit_null_first_means_the_default(live: httpx.AsyncClient, name: str) -> None:
    query, root, nodes = NULL_FIRST[name]
    resp = await gql(live, query, roles="reader,credit,pii")
    assert resp.status_code == 200 and codes(resp) == [], resp.text
    data = resp.json()["data"][root]
    if name == "complaints":
        assert len(data["nodes"]) == data["totalCount"] == 8  # the default page (50) holds them all
    if name == "Enterprise.complaints":
        assert len(data["complaints"]["nodes"]) == data["complaints"]["totalCount"] > 0
    # The same through a variable that is null.
    var_query = query.replace("first: null", "first: $first").replace("{", "query Q($first: Int) {", 1)
    resp = await gql(live, var_query, {"first": None}, roles="reader,credit,pii")
    assert resp.status_code == 200 and codes(resp) == [], resp.text
    assert resp.json()["data"][root] == data


async def test_out_of_range_first_is_bad_input_not_internal(live: httpx.AsyncClient) -> None:
    for first in (-1, 501, 2**31 - 1):
        for query in ("{ complaints(first: %d) { totalCount } }", "{ creditFlags(first: %d) { edges { cursor } } }",
                      "{ alerts(first: %d) { alertId } }", "{ auditLog(first: %d) { nodes { id } } }"):
            resp = await gql(live, query % first, roles="reader,credit,pii")
            assert "INTERNAL" not in codes(resp) and codes(resp), (query, first, resp.text)
            assert set(codes(resp)) <= {"BAD_USER_INPUT", "QUERY_TOO_COMPLEX"}, resp.text
    resp = await gql(live, "{ complaints(first: 2147483648) { totalCount } }")
    assert resp.status_code == 400 and codes(resp) == ["GRAPHQL_VALIDATION_FAILED"]


# ----------------------------------------------------------------------------- text inside the document


@pytest.mark.parametrize("query", [
    '{ complaint(id: "\\u0000") { id } }',
    '{ complaint(id: "a\u0000") { id } }',
    '{ orgUnit(code: """\u0000""") { code } }',
    '{ complaints(filter: {unit: "5108\\u0000"}) { totalCount } }',
    '{ auditLog(actor: "\\u0000") { nodes { id } } }',
])
async def test_nul_in_string_literals_is_bad_input(live: httpx.AsyncClient, query: str) -> None:
    resp = await gql(live, query, roles="reader,pii")
    assert resp.status_code == 400 and codes(resp) == ["BAD_USER_INPUT"], resp.text


async def test_nul_in_variables_is_bad_input(live: httpx.AsyncClient) -> None:
    resp = await gql(live, "query Q($id: ID!) { complaint(id: $id) { id } }", {"id": "R-STATION\x00"})
    assert resp.status_code == 400 and codes(resp) == ["BAD_USER_INPUT"]
    assert "variables.id: contains U+0000" in resp.json()["errors"][0]["message"]


async def test_a_document_nested_too_deep_is_a_parse_error(live: httpx.AsyncClient) -> None:
    deep = ('mutation { recordEvent(complaintId: "R-STATION", event: {id: "d", type: ACCEPTED, '
            'at: "2024-03-02T00:00:00+08:00", data: {a: ' + "[" * 3000 + "]" * 3000 + "}}) { id } }")
    resp = await gql(live, deep, roles="operator,reader")
    assert resp.status_code == 400 and codes(resp) == ["GRAPHQL_PARSE_FAILED"]
    selections = "{ complaints { nodes " * 400 + "{ id }" + " } }" * 400
    resp = await gql(live, selections)
    assert resp.status_code == 400 and codes(resp) == ["GRAPHQL_PARSE_FAILED"]


@pytest.mark.parametrize("after", [
    base64.urlsafe_b64encode(json.dumps(["2024-03-01T00:00:00+08:00", "R\u0000"]).encode()).decode(),
    base64.urlsafe_b64encode(b'["2024-03-01T00:00:00+08:00", "\\ud800"]').decode(),
    base64.urlsafe_b64encode(b'["2024-03-01T00:00:00+08:00", NaN]').decode(),
    "\u00b2", "9" * 40, "not base64 !",
])
async def test_cursors_that_smuggle_text(live: httpx.AsyncClient, after: str) -> None:
    for query in ("query Q($a: String) { complaints(after: $a) { totalCount } }",
                  "query Q($a: String) { creditFlags(after: $a) { edges { cursor } } }",
                  "query Q($a: String) { auditLog(after: $a) { nodes { id } } }"):
        resp = await gql(live, query, {"a": after}, roles="reader,credit,pii")
        assert resp.status_code == 200 and codes(resp) == ["BAD_USER_INPUT"], (query, resp.text)


# ---------------------------------------------------------------------------------------- recordEvent


RECORD_EVENT = """mutation R($data: JSON) { recordEvent(complaintId: "R-STATION", event: {id: "%s", type: REJECTED,
  at: "2024-03-02T09:00:00+08:00", data: $data}) { id events { id data } } }"""


def deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"reason": "r"}
    for _ in range(levels - 1):
        value = {"reason": "r", "more": value}
    return value


@pytest.mark.parametrize(("data", "says"), [
    ({"reason": "a\x00b"}, "variables.data.reason: contains U+0000"),
    (deep(17), "data: nests deeper than 16 levels"),
])
async def test_record_event_refuses_what_records_md_refuses(live: httpx.AsyncClient, data: Any, says: str) -> None:
    resp = await gql(live, RECORD_EVENT % "ev-bad", {"data": data}, roles="operator,reader")
    assert codes(resp) == ["BAD_USER_INPUT"] and says in resp.json()["errors"][0]["message"], resp.text
    assert "ev-bad" not in await event_data(live)


async def event_data(client: httpx.AsyncClient) -> dict[str, Any]:
    resp = await gql(client, '{ complaint(id: "R-STATION") { events { id data } } }')
    return {e["id"]: e["data"] for e in resp.json()["data"]["complaint"]["events"]}


@pytest.mark.parametrize(("literal", "says"), [
    ('{reason: "a\\u0000b"}', "contains U+0000"),
    ("{reason: \"r\", score: 1e999}", "is not finite"),
    ("{reason: \"r\", n: " + "[" * 20 + "]" * 20 + "}", "data: nests deeper than 16 levels"),
])
async def test_record_event_literals(live: httpx.AsyncClient, literal: str, says: str) -> None:
    doc = (RECORD_EVENT % "ev-lit").replace("($data: JSON)", "").replace("$data", literal)
    resp = await gql(live, doc, roles="operator,reader")
    assert codes(resp) == ["BAD_USER_INPUT"] and says in resp.json()["errors"][0]["message"], resp.text
    assert "ev-lit" not in await event_data(live)


async def test_record_event_keeps_16_levels_and_text_it_can_hold(live: httpx.AsyncClient) -> None:
    data = deep(16) | {"reason": "😀 tab\t bell\x07 中文"}
    resp = await gql(live, RECORD_EVENT % "ev-ok", {"data": data}, roles="operator,reader")
    assert codes(resp) == [], resp.text
    assert (await event_data(live))["ev-ok"] == data


@pytest.mark.parametrize(("query", "variables"), [
    ("query Q($t: DateTime) { complaints(filter: {receivedFrom: $t}) { totalCount } }",
     {"t": "0001-01-01T00:00:00+08:00"}),
    ("query Q($t: DateTime) { creditFlags(since: $t) { edges { cursor } } }", {"t": "9999-12-31T23:59:59-23:59"}),
    ('query Q($d: Date!) { kpiReport(unit: "510000", from: $d, to: "2024-01-31") { level } }', {"d": "0001-01-01"}),
    ('{ kpiReport(unit: "510000", from: "2024-01-01", to: "9999-12-31") { level } }', None),
    ('{ complaints(filter: {receivedTo: "0001-01-01T00:00:00+08:00"}) { totalCount } }', None),
])
async def test_instants_and_dates_out_of_range(live: httpx.AsyncClient, query: str,
                                               variables: dict[str, Any] | None) -> None:
    resp = await gql(live, query, variables, roles="reader,credit,evaluator")
    assert resp.status_code == 400, resp.text
    assert codes(resp) in (["BAD_USER_INPUT"], ["GRAPHQL_VALIDATION_FAILED"])
    assert "between 1900-01-01 and 2199-12-31" in resp.text
