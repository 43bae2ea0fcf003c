"""`trends` and `series` over GraphQL and REST: roles, the jurisdiction matrix (station, county, city and
province callers × their own unit, a sibling and their superior), the filter, bad input, the downloads."""

from __future__ import annotations

import csv
import io
import json

from gql_support import CALLERS, VISIBLE
from openpyxl import load_workbook

from tests.api.gql.conftest import Gateway, token

TRENDS = """query T($unit: String!, $by: TrendDimension!, $filter: ComplaintFilter, $top: Int) {
  trends(unit: $unit, from: "2024-03-01", to: "2024-03-31", by: $by, filter: $filter, top: $top) {
    from to previousFrom previousTo unit { code }
    total { key count previousCount change changeRate }
    rows { key label count previousCount change changeRate } } }"""
SERIES = """query S($unit: String!, $filter: ComplaintFilter) {
  series(unit: $unit, from: "2024-02-28", to: "2024-03-05", interval: DAY, filter: $filter) { start count } }"""

# (caller, the unit asked for, allowed): own, a sibling (or, for the province, a unit that does not exist —
# answered like a foreign one) and the superior.
MATRIX = [
    ("station", "510802001", True), ("station", "510802002", False), ("station", "510802", False),
    ("county", "510802", True), ("county", "510811", False), ("county", "510800", False),
    ("city", "510800", True), ("city", "510100", False), ("city", "510000", False),
    ("province", "510000", True), ("province", "530000", False), ("province", "100000", False),
]


async def test_jurisdiction_matrix(gw: Gateway) -> None:
    for caller, unit, allowed in MATRIX:
        await _check_caller(gw, caller, unit, allowed)


async def _check_caller(gw: Gateway, caller: str, unit: str, allowed: bool) -> None:
    a = await gw.gql(TRENDS, {"unit": unit, "by": "SUBORDINATE_UNIT"}, unit=CALLERS[caller], roles="supervisor")
    s = await gw.gql(SERIES, {"unit": unit}, unit=CALLERS[caller], roles="evaluator")
    rest = await gw.client.get("/api/v1/analysis/trends", params={
        "unit": unit, "from": "2024-03-01", "to": "2024-03-31", "by": "KIND"},
        headers={"Authorization": f"Bearer {token(CALLERS[caller], 'supervisor')}"})
    if not allowed:
        assert a.data is None and a.codes() == ["FORBIDDEN"], (caller, unit, a.body)
        assert s.data is None and s.codes() == ["FORBIDDEN"], (caller, unit, s.body)
        assert rest.status_code == 403 and rest.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        return
    assert not a.errors, a.body
    seen = len(VISIBLE[caller])  # the world's records are received 1–8 March 2024, one per place
    report = a.data["trends"]
    assert (report["from"], report["to"]) == ("2024-03-01", "2024-03-31")
    assert (report["previousFrom"], report["previousTo"]) == ("2024-01-30", "2024-02-29")
    assert report["total"] == {"key": "TOTAL", "count": seen, "previousCount": 0, "change": seen,
                               "changeRate": None}
    assert sum(r["count"] for r in report["rows"]) == seen
    assert all(r["changeRate"] is None for r in report["rows"])
    assert sum(p["count"] for p in s.data["series"]) == sum(
        1 for n, rid in enumerate(sorted(VISIBLE["national"])) if rid in VISIBLE[caller] and n < 5)
    assert len(s.data["series"]) == 7 and s.data["series"][0] == {"start": "2024-02-28", "count": 0}
    assert rest.status_code == 200 and rest.json()["total"]["count"] == seen


async def test_rows_roles_defaults_and_bad_input(gw: Gateway) -> None:
    a = await gw.gql(TRENDS, {"unit": "510800", "by": "SUBORDINATE_UNIT"}, unit="510000", roles="supervisor")
    rows = [(r["key"], r["label"], r["count"]) for r in a.data["trends"]["rows"]]
    # R-STATION, R-STATION-SIB and R-COUNTY under 利州区; R-COUNTY-SIB under 昭化区; R-CITY is the city's own
    assert rows == [("510802", "利州区市场监督管理局", 3), ("510800", "广元市市场监督管理局", 1),
                    ("510811", "昭化区市场监督管理局", 1)]
    for roles, ok in (("reader", False), ("operator,reader", False), ("supervisor", True), ("evaluator", True)):
        a = await gw.gql(TRENDS, {"unit": "510000", "by": "KIND"}, unit="510000", roles=roles)
        assert (not a.errors) == ok and (ok or a.codes() == ["FORBIDDEN"]), (roles, a.body)
    rest = await gw.client.get("/api/v1/analysis/series", params={
        "unit": "510000", "from": "2024-03-01", "to": "2024-03-31", "interval": "WEEK"},
        headers={"Authorization": f"Bearer {token('510000', 'reader')}"})
    assert rest.status_code == 403
    rest = await gw.client.get("/api/v1/analysis/series", params={"unit": "510000"})
    assert rest.status_code == 401 and rest.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    # an explicit null for an argument with a default means the default
    a = await gw.gql('{ trends(unit: "510000", from: "2024-03-01", to: "2024-03-31", by: KIND, compareWith: null, '
                     'top: null) { previousTo rows { key } } }', unit="510000", roles="supervisor")
    assert not a.errors and a.data["trends"]["previousTo"] == "2024-02-29"
    for query in BAD:
        a = await gw.gql(query, unit="510000", roles="supervisor")
        assert a.codes() == ["BAD_USER_INPUT"], (query, a.body)


async def test_the_filter_is_the_complaints_filter(gw: Gateway) -> None:
    async def total(flt: dict[str, object] | None) -> int:
        a = await gw.gql(TRENDS, {"unit": "510000", "by": "CATEGORY", "filter": flt}, unit="510000",
                         roles="supervisor")
        assert not a.errors, a.body
        return int(a.data["trends"]["total"]["count"])

    assert await total(None) == 7
    assert await total({"kind": ["REPORT"]}) == 1  # R-STATION
    assert await total({"unit": "510802"}) == 3
    assert await total({"unit": "510104"}) == 1
    assert await total({"receivedFrom": "2024-03-03T00:00:00+08:00", "receivedTo": "2024-03-05T00:00:00+08:00"}) == 2
    assert await total({"status": ["IN_PROGRESS"]}) == 7  # every record has a DISPATCHED event
    assert await total({"status": ["CLOSED"]}) == 0
    # every record's first obligation (accept / decide) fell due in March 2024 unfulfilled
    assert await total({"overdue": True}) == 7
    assert await total({"overdue": False}) == 0
    a = await gw.gql(TRENDS, {"unit": "510000", "by": "KIND", "filter": {"hotline": ["110"]}}, unit="510000",
                     roles="supervisor")
    assert a.codes() == ["BAD_USER_INPUT"]
    a = await gw.gql(TRENDS, {"unit": "510000", "by": "KIND", "filter": {"unit": "999999"}}, unit="510000",
                     roles="supervisor")
    assert a.codes() == ["BAD_USER_INPUT"]


BAD = [
    '{ trends(unit: "510000", from: "2024-03-02", to: "2024-03-01", by: KIND) { total { count } } }',
    '{ trends(unit: "510000", from: "1990-01-01", to: "2024-03-01", by: KIND) { total { count } } }',
    '{ trends(unit: "510000", from: "2024-03-01", to: "2024-03-02", by: KIND, top: 501) { total { count } } }',
    '{ trends(unit: "510000", from: "2024-03-01", to: "2024-03-02", by: KIND, top: -1) { total { count } } }',
    '{ series(unit: "510000", from: "2024-03-02", to: "2024-03-01", interval: DAY) { count } }',
]


async def rest(gw: Gateway, path: str, **params: str) -> object:
    return await gw.client.get(f"/api/v1/analysis/{path}", params=params,
                               headers={"Authorization": f"Bearer {token('510000', 'evaluator')}"})


async def test_rest_formats(gw: Gateway) -> None:
    common = {"unit": "510800", "from": "2024-03-01", "to": "2024-03-31"}
    r = await rest(gw, "trends", **common, by="SUBORDINATE_UNIT", compare_with="SAME_PERIOD_LAST_YEAR", top="2")
    doc = r.json()  # type: ignore[attr-defined]
    assert (doc["previous_from"], doc["previous_to"]) == ("2023-03-01", "2023-03-31")
    assert [(x["key"], x["count"], x["change_rate"]) for x in doc["rows"]] == [("510802", 3, None),
                                                                               ("510800", 1, None)]
    assert doc["total"]["count"] == 5
    r = await rest(gw, "trends", **common, by="KIND", format="csv",
                   filter=json.dumps({"received_from": "2024-03-01T00:00:00+08:00"}))
    body = r.content  # type: ignore[attr-defined]
    assert body.startswith(b"\xef\xbb\xbf") and "attachment" in r.headers["content-disposition"]  # type: ignore
    lines = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert lines[0] == ["row", "key", "label", "count", "previous_count", "change", "change_rate"]
    assert lines[1][:4] == ["key", "COMPLAINT", "投诉", "4"] and lines[-1][:4] == ["total", "TOTAL", "合计", "5"]
    r = await rest(gw, "series", **common, interval="WEEK", format="xlsx")
    sheet = load_workbook(io.BytesIO(r.content)).worksheets[0]  # type: ignore[attr-defined]
    values = [(row[0].value, row[1].value) for row in sheet.iter_rows(min_row=3)]
    assert values == [("2024-02-26", 2), ("2024-03-04", 3), ("2024-03-11", 0), ("2024-03-18", 0),
                      ("2024-03-25", 0)]
    r = await rest(gw, "series", **common, interval="MONTH")
    assert r.json()["points"] == [{"start": "2024-03-01", "count": 5}]  # type: ignore[attr-defined]
    for path, params, status in REST_BAD:
        r = await rest(gw, path, **params)
        assert r.status_code == status, r.text  # type: ignore[attr-defined]
        assert r.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"  # type: ignore[attr-defined]


REST_BAD = [
    ("trends", {"unit": "510000", "from": "2024-03-01", "to": "2024-03-31"}, 400),  # no `by`
    ("trends", {"unit": "510000", "from": "2024-03-01", "to": "x", "by": "KIND"}, 400),
    ("trends", {"unit": "510000", "from": "2024-03-01", "to": "2024-03-31", "by": "KIND", "top": "many"}, 400),
    ("trends", {"unit": "510000", "from": "2024-03-01", "to": "2024-03-31", "by": "KIND", "format": "pdf"}, 400),
    ("trends", {"unit": "510000", "from": "2024-03-01", "to": "2024-03-31", "by": "KIND", "filter": "{"}, 400),
    ("trends", {"unit": "510000", "from": "2024-03-01", "to": "2024-03-31", "by": "KIND",
                "filter": '{"kind": ["PARCEL"]}'}, 400),
    ("trends", {"unit": "510000", "from": "2024-03-01", "to": "2024-03-31", "by": "KIND",
                "filter": '{"colour": "red"}'}, 400),
    ("trends", {"unit": "510000", "from": "2024-03-01", "to": "2024-03-31", "by": "KIND",
                "filter": '{"received_from": "2024-03-01"}'}, 400),
    ("series", {"unit": "510000", "from": "2024-03-01", "to": "2024-03-31", "interval": "HOUR"}, 400),
    ("series", {"from": "2024-03-01", "to": "2024-03-31", "interval": "DAY"}, 400),
]


async def test_formula_text_is_literal_in_exports() -> None:
    from gateway.supervision.exports import literal, trends_csv

    doc = {"rows": [{"key": "=HYPERLINK(\"x\")", "label": "+1", "count": 1, "previous_count": 0, "change": 1,
                     "change_rate": None}],
           "total": {"key": "TOTAL", "label": "合计", "count": 1, "previous_count": 0, "change": 1,
                     "change_rate": None}}
    lines = list(csv.reader(io.StringIO(trends_csv(doc).decode("utf-8-sig"))))
    assert lines[1][1:3] == ["'=HYPERLINK(\"x\")", "'+1"]
    assert literal("-3") == "'-3" and literal(-3) == -3 and literal("正常") == "正常"
