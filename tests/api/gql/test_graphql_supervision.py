"""Supervision over GraphQL (supervision.md): the jurisdiction matrix over the new fields (station, county,
city, province and national callers x their own, a sibling's and a superior's unit and records), errors
with their codes, idempotency, and the `supervision` block of the KPI report in GraphQL, JSON, CSV and XLSX.

The world of gql_support: one record per place, each with only a DISPATCHED event in March 2024, so at
now every record has one open obligation (C_ACCEPT, or R_DECIDE for the report R-STATION) long overdue.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from openpyxl import load_workbook

from gateway.core.auth import mint_token
from tests.api.gql.conftest import Gateway
from tests.api.gql.gql_support import CALLERS, PLACES, SECRET, VISIBLE

# (a sibling unit, a superior unit) of each caller; the province has no sibling in this tree: an unknown
# code stands in, and must get the same answer.
OTHERS = {
    "national": (None, None),
    "province": ("520000", "100000"),
    "city": ("510100", "510000"),
    "county": ("510811", "510800"),
    "station": ("510802002", "510802"),
}
LIGHTS = "query($u: String!) { deadlineLights(unit: $u) { unit { code } red yellow green } }"
WATCH = ("query($u: String!) { deadlineWatch(unit: $u, first: 500) { totalCount "
         "nodes { complaint { id } code daysLeft light dueDate } } }")
ORDERS = ("query($u: String!) { supervisionOrders(unit: $u) { totalCount nodes { id issuedBy { code } "
          "complaints { id } responses { unit { code } note } state } } }")
ISSUE = ("mutation($ids: [ID!]!, $note: String!, $within: Int, $key: String) { issueSupervision("
         "complaintIds: $ids, note: $note, respondWithin: $within, idempotencyKey: $key) { id dueDate state "
         "issuedBy { code } complaints { id } } }")
RESPOND = ("mutation($id: ID!, $note: String!) { respondSupervision(orderId: $id, note: $note) { id state "
           "responses { unit { code } note } } }")


def own_record(caller: str) -> str:
    return next(rid for rid, unit in PLACES.items() if unit == CALLERS[caller])


async def test_lights_and_watch_matrix(gw: Gateway) -> None:
    for caller in CALLERS:
        await _lights_and_watch(gw, caller)


async def _lights_and_watch(gw: Gateway, caller: str) -> None:
    unit = CALLERS[caller]
    for roles in ("supervisor", "evaluator"):
        a = await gw.gql(WATCH, {"u": unit}, unit=unit, roles=roles)
        assert not a.errors, a.errors
        nodes = a.data["deadlineWatch"]["nodes"]
        assert {n["complaint"]["id"] for n in nodes} == VISIBLE[caller]
        assert a.data["deadlineWatch"]["totalCount"] == len(VISIBLE[caller])
        assert all(n["light"] == "RED" and n["daysLeft"] == 0 for n in nodes)  # March deadlines, long past
        a = await gw.gql(LIGHTS, {"u": unit}, unit=unit, roles=roles)
        assert not a.errors, a.errors
        rows = a.data["deadlineLights"]
        assert rows[-1] == {"unit": {"code": unit}, "red": len(VISIBLE[caller]), "yellow": 0, "green": 0}
        assert sum(r["red"] for r in rows[:-1]) <= rows[-1]["red"]
    sibling, superior = OTHERS[caller]
    for other in (sibling, superior):
        if other is None:
            continue
        for query in (WATCH, LIGHTS):
            a = await gw.gql(query, {"u": other}, unit=unit, roles="supervisor,evaluator")
            assert a.data is None and a.codes() == ["FORBIDDEN"], (caller, other)
    for roles in ("reader", "operator,pii"):  # the roles that do not watch deadlines
        a = await gw.gql(LIGHTS, {"u": unit}, unit=unit, roles=roles)
        assert a.codes() == ["FORBIDDEN"]


async def test_issue_matrix(gw: Gateway) -> None:
    for caller in CALLERS:
        await _issue_everywhere(gw, caller)


async def _issue_everywhere(gw: Gateway, caller: str) -> None:
    unit = CALLERS[caller]
    issued = set()
    for rid in sorted(PLACES):
        a = await gw.gql(ISSUE, {"ids": [rid], "note": "请尽快办理"}, unit=unit, roles="supervisor")
        if rid not in VISIBLE[caller]:
            expected = ["NOT_FOUND"]  # outside its jurisdiction: as if it did not exist
        elif rid == own_record(caller):
            expected = ["FORBIDDEN"]  # a unit does not supervise itself
        else:
            expected = []
        assert a.codes() == expected, (caller, rid)
        if not expected:
            order = a.data["issueSupervision"]
            assert order["issuedBy"] == {"code": unit} and order["complaints"] == [{"id": rid}]
            assert order["state"] == "OPEN"
            issued.add(order["id"])
    assert len(issued) == len(VISIBLE[caller]) - 1
    a = await gw.gql(ORDERS, {"u": unit}, unit=unit, roles="supervisor")
    assert issued <= {n["id"] for n in a.data["supervisionOrders"]["nodes"]}
    a = await gw.gql(ISSUE, {"ids": ["R-STATION"], "note": "x"}, unit=unit, roles="operator,evaluator,reader")
    assert a.codes() == ["FORBIDDEN"]


async def test_respond_and_read_matrix(gw: Gateway) -> None:
    orders = {}
    for rid in sorted(set(PLACES) - {"R-NATIONAL"}):  # the national supervisor presses every record below it
        a = await gw.gql(ISSUE, {"ids": [rid], "note": f"督办 {rid}"}, unit="100000", roles="supervisor")
        orders[rid] = a.data["issueSupervision"]["id"]
    for caller in CALLERS:
        await _respond_and_read(gw, caller, orders)


async def _respond_and_read(gw: Gateway, caller: str, orders: dict[str, str]) -> None:
    unit = CALLERS[caller]
    for rid, oid in sorted(orders.items()):
        a = await gw.gql(RESPOND, {"id": oid, "note": "已办理"}, unit=unit, roles="operator")
        if rid not in VISIBLE[caller]:
            assert a.codes() == ["NOT_FOUND"], (caller, rid)
        elif caller == "national":
            assert a.codes() == ["FORBIDDEN"], (caller, rid)  # the issuing unit is not strictly below itself
        else:
            assert not a.errors, (caller, rid, a.errors)
            assert a.data["respondSupervision"]["state"] == "RESPONDED_ON_TIME"
            assert a.data["respondSupervision"]["responses"][-1] == {"unit": {"code": unit}, "note": "已办理"}

    for roles in ("operator", "evaluator", "supervisor"):
        a = await gw.gql(ORDERS, {"u": unit}, unit=unit, roles=roles)
        assert not a.errors, a.errors
        nodes = a.data["supervisionOrders"]["nodes"]
        assert {n["id"] for n in nodes} == {orders[rid] for rid in VISIBLE[caller] if rid in orders}
        for n in nodes:
            assert {c["id"] for c in n["complaints"]} <= VISIBLE[caller]
            assert n["issuedBy"] == {"code": "100000"}
    a = await gw.gql(ORDERS, {"u": unit}, unit=unit, roles="reader")
    assert a.codes() == ["FORBIDDEN"]
    for other in OTHERS[caller]:
        if other is not None:
            a = await gw.gql(ORDERS, {"u": other}, unit=unit, roles="supervisor,operator,evaluator")
            assert a.codes() == ["FORBIDDEN"], (caller, other)

    # Complaint.supervisionOrders on every record, by id: only the visible records answer
    lookups = " ".join(f'r{i}: complaint(id: "{rid}") {{ id supervisionOrders {{ id complaints {{ id }} }} }}'
                       for i, rid in enumerate(sorted(PLACES)))
    a = await gw.gql(f"{{ {lookups} }}", unit=unit, roles="reader")
    assert not a.errors
    for rec in a.data.values():
        if rec is not None:
            expected = [orders[rec["id"]]] if rec["id"] in orders else []
            assert [o["id"] for o in rec["supervisionOrders"]] == expected
            assert all(o["complaints"] == [{"id": rec["id"]}] for o in rec["supervisionOrders"])


async def test_an_order_over_two_counties_as_each_sees_it(gw: Gateway) -> None:
    a = await gw.gql(ISSUE, {"ids": ["R-STATION", "R-COUNTY-SIB"], "note": "两县同督"}, unit="510800",
                     roles="supervisor")
    oid = a.data["issueSupervision"]["id"]
    assert not (await gw.gql(RESPOND, {"id": oid, "note": "利州已办"}, unit="510802", roles="operator")).errors
    assert not (await gw.gql(RESPOND, {"id": oid, "note": "昭化已办"}, unit="510811", roles="operator")).errors
    query = ("query($u: String!) { supervisionOrders(unit: $u) { nodes { complaints { id } responses { note } "
             "issuedBy { code parent { code } children { code } } } } }")
    county = (await gw.gql(query, {"u": "510802"}, unit="510802", roles="operator")).data
    [order] = county["supervisionOrders"]["nodes"]
    assert order["complaints"] == [{"id": "R-STATION"}]  # the sibling county's record stays hidden
    assert order["responses"] == [{"note": "利州已办"}]  # and so does its response
    # the issuing city shows no parent and, of its children, only the caller's own branch
    assert order["issuedBy"] == {"code": "510800", "parent": None, "children": [{"code": "510802"}]}
    city = (await gw.gql(query, {"u": "510800"}, unit="510800", roles="supervisor")).data
    [order] = city["supervisionOrders"]["nodes"]
    assert {c["id"] for c in order["complaints"]} == {"R-STATION", "R-COUNTY-SIB"}
    assert [r["note"] for r in order["responses"]] == ["利州已办", "昭化已办"]
    # a station answering on behalf of its county's order sees the county's response too (its ancestor)
    station = (await gw.gql(query, {"u": "510802001"}, unit="510802001", roles="operator")).data
    assert station["supervisionOrders"]["nodes"][0]["responses"] == [{"note": "利州已办"}]


async def test_errors_and_idempotency(gw: Gateway) -> None:
    def issue(**variables: Any) -> Any:
        return gw.gql(ISSUE, {"ids": ["R-STATION"], "note": "督办", **variables}, unit="510800", roles="supervisor")

    for bad in ({"note": ""}, {"note": "督" * 501}, {"within": 0}, {"within": 31}, {"ids": []},
                {"ids": [f"X{i}" for i in range(101)]}):
        a = await issue(**bad)
        assert a.data is None and a.codes() == ["BAD_USER_INPUT"], bad
    a = await gw.gql(ORDERS, {"u": "510800"}, unit="510800", roles="supervisor")
    assert a.data["supervisionOrders"]["totalCount"] == 0  # nothing was issued

    first = (await issue(key="k-1", within=None)).data["issueSupervision"]  # explicit null: the default 3
    again = (await issue(key="k-1", ids=["R-COUNTY"])).data["issueSupervision"]
    assert again["id"] == first["id"] and again["complaints"] == [{"id": "R-STATION"}]
    assert (await gw.gql(ORDERS, {"u": "510800"}, unit="510800", roles="supervisor")
            ).data["supervisionOrders"]["totalCount"] == 1

    a = await gw.gql(RESPOND, {"id": "nope", "note": "x"}, unit="510802", roles="operator")
    assert a.codes() == ["NOT_FOUND"]
    a = await gw.gql(RESPOND, {"id": first["id"], "note": " "}, unit="510802", roles="operator")
    assert a.codes() == ["BAD_USER_INPUT"]
    for query, variables in ((WATCH.replace("first: 500", "first: 501"), {"u": "510800"}),
                             ('{ deadlineWatch(unit: "510800", after: "zz") { totalCount } }', None),
                             ('{ deadlineLights(unit: "510800", level: 3) { red } }', None),
                             ('{ deadlineLights(unit: "510800", asOf: "2024-01-01T00:00:00") { red } }', None),
                             ('{ supervisionOrders(unit: "510800", after: "zz") { totalCount } }', None),
                             ('{ deadlineWatch(unit: "510800", first: null) { totalCount } }', None)):
        a = await gw.gql(query, variables, unit="510800", roles="supervisor")
        assert a.codes() == ([] if "null" in query else ["BAD_USER_INPUT"]), query


async def test_report_block_everywhere(gw: Gateway) -> None:
    a = await gw.gql(ISSUE, {"ids": ["R-STATION", "R-COUNTY-SIB"], "note": "督办"}, unit="510800",
                     roles="supervisor")
    oid = a.data["issueSupervision"]["id"]
    await gw.gql(RESPOND, {"id": oid, "note": "已办"}, unit="510802001", roles="operator")
    # a report as of now is as of the current whole second: ask a little later to count what was just done
    as_of = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0).isoformat()
    report = ('query($asOf: DateTime) { kpiReport(unit: "510800", level: 4, from: "2024-03-01", to: "2024-03-31", '
              'asOf: $asOf) { total { supervision { issued respondedOnTime respondedLate overdue rate } } '
              'rows { unit { code } supervision { issued respondedOnTime rate } } } }')
    a = await gw.gql(report, {"asOf": as_of}, unit="510800", roles="evaluator")
    assert not a.errors, a.errors
    doc = a.data["kpiReport"]
    assert doc["total"]["supervision"] == {"issued": 1, "respondedOnTime": 1, "respondedLate": 0, "overdue": 0,
                                           "rate": 1.0}
    rows = {r["unit"]["code"]: r["supervision"] for r in doc["rows"]}
    assert rows == {"510802": {"issued": 1, "respondedOnTime": 1, "rate": 1.0},
                    "510811": {"issued": 1, "respondedOnTime": 1, "rate": 1.0}}

    headers = {"Authorization": f"Bearer {mint_token(SECRET, 'e', '510800', ['evaluator'])}"}
    params = {"unit": "510800", "level": "4", "from": "2024-03-01", "to": "2024-03-31", "as_of": as_of}
    resp = await gw.client.get("/api/v1/kpi/report", params=params, headers=headers)
    assert resp.json()["total"]["supervision"] == {"issued": 1, "responded_on_time": 1, "responded_late": 0,
                                                   "overdue": 0, "rate": 1.0}
    resp = await gw.client.get("/api/v1/kpi/report", params={**params, "format": "csv"}, headers=headers)
    lines = {line["unit_code"]: line for line in csv.DictReader(io.StringIO(resp.text.lstrip("\ufeff")))}
    assert lines["510802"]["supervision.issued"] == "1" and lines["510800"]["supervision.rate"] == "1.0"
    resp = await gw.client.get("/api/v1/kpi/report", params={**params, "format": "xlsx"}, headers=headers)
    sheet = load_workbook(io.BytesIO(resp.content)).worksheets[0]
    # One header row, in Chinese (the machine keys are on the parameters sheet); data from row 2.
    header = {sheet.cell(row=1, column=c).value: c for c in range(1, sheet.max_column + 1)}
    assert sheet.cell(row=2, column=header["督办件数"]).value == 1
    assert sheet.cell(row=2, column=header["督办按时反馈率"]).number_format == "0.00%"
