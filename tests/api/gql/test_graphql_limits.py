"""Depth and cost limits (fragments and aliases count), oversized pages, persisted operations, safelist,
introspection switch."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.api.gql.conftest import Gateway, another_gateway

OPERATIONS = Path(__file__).resolve().parents[3] / "graphql" / "operations"


async def test_deep_query_is_too_complex(gw: Gateway) -> None:
    inner = "code"
    for _ in range(12):
        inner = f"children {{ {inner} }}"
    a = await gw.gql(f'{{ orgUnit(code: "100000") {{ {inner} }} }}')
    assert a.status == 400 and a.codes() == ["QUERY_TOO_COMPLEX"]
    assert a.errors[0]["extensions"]["depth"] == 14
    ok = await gw.gql('{ orgUnit(code: "100000") { children { children { code } } } }')
    assert ok.status == 200 and not ok.errors


async def test_depth_counts_through_fragments(gw: Gateway) -> None:
    frags = "fragment F0 on OrgUnit { code }\n" + "\n".join(
        f"fragment F{i} on OrgUnit {{ children {{ ...F{i - 1} }} }}" for i in range(1, 13))
    a = await gw.gql(f'{{ orgUnit(code: "100000") {{ ...F12 }} }}\n{frags}')
    assert a.codes() == ["QUERY_TOO_COMPLEX"]


async def test_fragment_bomb_is_refused_fast(gw: Gateway) -> None:
    # each fragment spreads the previous one 4 times: 4^20 fields, measured once per fragment
    frags = ["fragment F0 on Complaint { id summary }"]
    frags += [f"fragment F{i} on Complaint {{ ...F{i - 1} ...F{i - 1} ...F{i - 1} ...F{i - 1} }}"
              for i in range(1, 21)]
    a = await gw.gql('{ complaint(id: "R-STATION") { ...F20 } }\n' + "\n".join(frags))
    assert a.codes() == ["QUERY_TOO_COMPLEX"]


async def test_alias_bomb_is_refused(gw: Gateway) -> None:
    aliases = " ".join(f"a{i}: complaints(first: 100) {{ nodes {{ id }} }}" for i in range(60))
    a = await gw.gql(f"{{ {aliases} }}")
    assert a.codes() == ["QUERY_TOO_COMPLEX"]
    assert a.errors[0]["extensions"]["cost"] > 5000


async def test_page_size_counts_even_through_variables(gw: Gateway) -> None:
    q = "query($n: Int) { complaints(first: $n) { nodes { id events { id } cases { caseNo } } } }"
    assert (await gw.gql(q, {"n": 50})).status == 200
    a = await gw.gql(q, {"n": 500})
    assert a.codes() == ["QUERY_TOO_COMPLEX"]


async def test_oversized_first_is_bad_user_input(gw: Gateway) -> None:
    for first in (501, 100000, -1):
        a = await gw.gql(f"{{ complaints(first: {first}) {{ nodes {{ id }} }} }}")
        assert a.status == 400 and a.codes() == ["BAD_USER_INPUT"], first


async def test_limits_are_configurable(gw: Gateway) -> None:
    async with another_gateway(gw, max_depth=2, max_cost=10) as small:
        assert (await small.gql('{ complaint(id: "R-STATION") { id } }')).status == 200
        assert (await small.gql('{ complaint(id: "R-STATION") { handlingUnit { parent { code } } } }')).codes() == [
            "QUERY_TOO_COMPLEX"]
        assert (await small.gql("{ complaints(first: 20) { nodes { id } } }")).codes() == ["QUERY_TOO_COMPLEX"]


def _operation(name: str) -> tuple[str, str]:
    text = (OPERATIONS / f"{name}.graphql").read_text(encoding="utf-8")
    return text, hashlib.sha256(text.encode()).hexdigest()


async def test_every_operation_file_validates_and_runs_by_hash(gw: Gateway) -> None:
    files = sorted(OPERATIONS.glob("*.graphql"))
    assert len(files) >= 3
    for path in files:
        _, digest = _operation(path.stem)
        a = await gw.gql(None, {"id": "x", "uscc": "91110000802100433B", "unit": "510800",
                                "from": "2024-03-01", "to": "2024-03-31", "complaintIds": ["x"], "note": "x",
                                "orderId": "x"},
                         extensions={"persistedQuery": {"version": 1, "sha256Hash": digest}},
                         roles="reader,evaluator,credit,supervisor")
        assert a.status == 200, (path.stem, a.body)
        assert not [c for c in a.codes() if c in {"GRAPHQL_VALIDATION_FAILED", "PERSISTED_QUERY_NOT_FOUND"}]


async def test_persisted_lookup_by_apollo_hash_and_document_id(gw: Gateway) -> None:
    _, digest = _operation("ExternalComplaintLookup")
    by_apollo = await gw.gql(None, {"id": "R-STATION"},
                             extensions={"persistedQuery": {"version": 1, "sha256Hash": digest}})
    by_id = await gw.gql(None, {"id": "R-STATION"}, documentId=f"sha256:{digest}")
    for key in ("id", "summary", "events", "cases", "enterprise"):
        assert by_apollo.data["complaint"][key] == by_id.data["complaint"][key], (key, by_apollo.errors)
    assert by_apollo.data["complaint"]["id"] == "R-STATION"
    assert by_apollo.data["complaint"]["cases"] == [
        {"caseNo": "CASE-R-STATION", "status": "INVESTIGATING", "violation": None, "penaltyAmount": None,
         "filedAt": "2024-03-20T10:00:00+08:00", "closedAt": None}]
    missing = await gw.gql(None, documentId="sha256:" + "0" * 64)
    assert missing.status == 400 and missing.codes() == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_get_by_hash(gw: Gateway) -> None:
    import json

    from tests.api.gql.conftest import token

    _, digest = _operation("ExternalComplaintLookup")
    resp = await gw.client.get("/graphql", params={
        "extensions": json.dumps({"persistedQuery": {"version": 1, "sha256Hash": digest}}),
        "variables": json.dumps({"id": "R-COUNTY"})},
        headers={"Accept": "application/graphql-response+json", "Authorization": f"Bearer {token()}"})
    assert resp.status_code == 200 and resp.json()["data"]["complaint"]["id"] == "R-COUNTY"


async def test_safelist_mode_accepts_only_persisted_operations(gw: Gateway) -> None:
    text, digest = _operation("ExternalComplaintLookup")
    async with another_gateway(gw, graphql_safelist=True) as safe:
        a = await safe.gql('{ complaint(id: "R-STATION") { id } }')
        assert a.status == 400 and a.codes() == ["OPERATION_NOT_SAFELISTED"]
        b = await safe.gql(None, {"id": "R-STATION"}, documentId=digest)
        assert b.data["complaint"]["id"] == "R-STATION"
        c = await safe.gql(text, {"id": "R-STATION"})  # the very text of a persisted operation
        assert c.data == b.data


async def test_introspection_can_be_switched_off(gw: Gateway) -> None:
    assert (await gw.gql("{ __schema { queryType { name } } }")).data == {"__schema": {"queryType": {"name": "Query"}}}
    async with another_gateway(gw, graphql_introspection=False) as closed:
        a = await closed.gql("{ __schema { queryType { name } } }")
        assert a.status == 400 and set(a.codes()) == {"GRAPHQL_VALIDATION_FAILED"}
        assert (await closed.gql('{ complaint(id: "R-STATION") { __typename id } }')).status == 200


async def test_graphiql_introspection_query_fits_the_limits(gw: Gateway) -> None:
    from graphql import get_introspection_query

    a = await gw.gql(get_introspection_query(descriptions=True))
    assert a.status == 200 and not a.errors
