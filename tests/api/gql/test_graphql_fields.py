"""Every root field and mutation, through HTTP, with the simulators behind."""

from __future__ import annotations

import importlib.util
from typing import Any

from gateway.complaints.models import Event
from gateway.core.db import transaction
from tests.api.gql.conftest import Gateway, another_gateway, fresh_sim
from tests.api.gql.gql_support import USCC_A, USCC_B


async def test_complaint_with_everything(gw: Gateway) -> None:
    a = await gw.gql('''{ complaint(id: "R-STATION") { id kind channel hotline urgency category receivedAt
        handlingUnit { code level parent { code } } regionCode respondent { uscc name } summary
        amountInvolved recoveredAmount status updatedAt events { id type at unit data }
        deadlines { code dueDate state startsAt policyVersion } } }''')
    assert not a.errors, a.errors
    c = a.data["complaint"]
    assert c["kind"] == "REPORT" and c["hotline"] == "12315"
    assert c["handlingUnit"] == {"code": "510802001", "level": 5, "parent": {"code": "510802"}}
    assert c["respondent"]["uscc"] == USCC_A
    assert (c["amountInvolved"], c["recoveredAmount"]) == ("1299.00", "100.50")
    assert c["events"][0]["data"] == {"to": "510802001"}
    assert c["status"] == "IN_PROGRESS"
    # a REPORT received 2024-03-07 with no decision: R_DECIDE, 15 working days, long overdue now
    assert c["deadlines"] == [{"code": "R_DECIDE", "dueDate": "2024-03-28", "state": "OVERDUE",
                               "startsAt": "2024-03-07T09:30:00+08:00", "policyVersion": "order-20"}]


async def test_unknown_complaint_is_null(gw: Gateway) -> None:
    a = await gw.gql('{ complaint(id: "NOPE") { id } }')
    assert a.data == {"complaint": None} and not a.errors


async def test_complaints_filters_and_pages(gw: Gateway) -> None:
    async def ids(flt: str, first: int = 50) -> list[str]:
        a = await gw.gql(f"{{ complaints(first: {first}, filter: {flt}) {{ nodes {{ id }} }} }}")
        assert not a.errors, a.errors
        return [n["id"] for n in a.data["complaints"]["nodes"]]

    assert await ids("{kind: [REPORT]}") == ["R-STATION"]
    assert len(await ids("{kind: [COMPLAINT], channel: [HOTLINE], urgency: [NORMAL], category: [FOOD]}")) == 7
    assert len(await ids('{hotline: ["12315"]}')) == 8 and await ids('{hotline: ["12365"]}') == []
    assert await ids(f'{{respondentUscc: "{USCC_B}"}}') == []
    assert set(await ids('{unit: "510802"}')) == {"R-STATION", "R-STATION-SIB", "R-COUNTY"}
    # R-CITY (03-01) .. R-STATION-SIB (03-08): received on consecutive days in sorted-id order
    assert await ids('{receivedFrom: "2024-03-02T00:00:00+08:00", receivedTo: "2024-03-04T00:00:00+08:00"}') == [
        "R-COUNTY", "R-CITY-SIB"]
    assert len(await ids("{status: [IN_PROGRESS]}")) == 8 and await ids("{status: [CLOSED, RECEIVED]}") == []
    assert len(await ids("{overdue: true}")) == 8  # C_ACCEPT / R_DECIDE long past
    assert await ids("{overdue: false}") == []

    # cursor pagination walks the whole list once, newest first
    seen: list[str] = []
    after = None
    while True:
        arg = f', after: "{after}"' if after else ""
        a = await gw.gql(f"{{ complaints(first: 3{arg}) {{ nodes {{ id receivedAt }} "
                         "pageInfo { hasNextPage endCursor } } }")
        page = a.data["complaints"]
        seen += [n["id"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == 8 and len(set(seen)) == 8
    a = await gw.gql("{ complaints { nodes { receivedAt } } }")
    times = [n["receivedAt"] for n in a.data["complaints"]["nodes"]]
    assert times == sorted(times, reverse=True)


async def test_bad_filter_values_are_bad_user_input(gw: Gateway) -> None:
    for flt in ('{hotline: ["110"]}', '{unit: "999999"}', '{respondentUscc: "123"}'):
        a = await gw.gql(f"{{ complaints(filter: {flt}) {{ nodes {{ id }} }} }}")
        assert a.codes() == ["BAD_USER_INPUT"], flt
    a = await gw.gql('{ complaints(after: "garbage") { nodes { id } } }')
    assert a.codes() == ["BAD_USER_INPUT"]


async def test_enterprise_and_org_unit(gw: Gateway) -> None:
    a = await gw.gql(f'{{ enterprise(uscc: "{USCC_A}") {{ uscc complaintCount creditProfile {{ name riskLevel '
                     f'registrationStatus }} }} orgUnit(code: "510800") {{ name level parent {{ code }} '
                     f'children {{ code }} }} }}')
    assert not a.errors, a.errors
    assert a.data["enterprise"]["complaintCount"] == 8
    assert a.data["enterprise"]["creditProfile"]["registrationStatus"] in {"ACTIVE", "REVOKED", "CANCELLED"}
    assert a.data["orgUnit"]["parent"] == {"code": "510000"}
    assert [c["code"] for c in a.data["orgUnit"]["children"]] == ["510802", "510811"]
    gw.sims["credit"].seed({"absent": [USCC_B]})
    a = await gw.gql(f'{{ enterprise(uscc: "{USCC_B}") {{ uscc }} }}')
    assert a.data == {"enterprise": None} and not a.errors
    a = await gw.gql('{ enterprise(uscc: "not-a-code") { uscc } }')
    assert a.codes() == ["BAD_USER_INPUT"]


async def test_kpi_report(gw: Gateway) -> None:
    a = await gw.gql('{ kpiReport(unit: "510800", from: "2024-03-01", to: "2024-03-31") { level total { received '
                     'receivedByKind { kind count } onTime overdue timelinessRate recoveredAmount } '
                     'rows { unit { code } received } } }', unit="510000", roles="evaluator")
    if importlib.util.find_spec("gateway.reports.build") is None:
        assert a.codes() == ["NOT_IMPLEMENTED"]
        return
    assert not a.errors, a.errors
    report = a.data["kpiReport"]
    assert report["level"] == 4
    assert report["total"]["received"] == 5  # R-STATION, -SIB, R-COUNTY, R-COUNTY-SIB, R-CITY
    assert {r["unit"]["code"] for r in report["rows"]} == {"510802", "510811"}


async def test_kpi_report_needs_the_evaluator_role(gw: Gateway) -> None:
    a = await gw.gql('{ kpiReport(unit: "510800", from: "2024-03-01", to: "2024-03-31") { level } }')
    assert a.codes() == ["FORBIDDEN"]


async def test_credit_flags(gw: Gateway) -> None:
    a = await gw.gql("{ creditFlags(first: 10) { nodes { flagId reason deliveryState } pageInfo { hasNextPage } } }",
                     roles="credit")
    if importlib.util.find_spec("gateway.flags.store") is None:
        assert a.codes() == ["NOT_IMPLEMENTED"]
        return
    assert not a.errors, a.errors
    assert a.data["creditFlags"]["pageInfo"] == {"hasNextPage": False}
    a = await gw.gql("{ creditFlags { nodes { flagId } } }")  # reader only
    assert a.codes() == ["FORBIDDEN"]
    a = await gw.gql("{ creditFlags(first: 501) { nodes { flagId } } }", roles="credit")
    assert a.codes() == ["BAD_USER_INPUT"]


async def test_record_event_stores_and_merges(gw: Gateway) -> None:
    m = '''mutation($e: EventInput!) { recordEvent(complaintId: "R-COUNTY", event: $e) {
             id status events { id type data } } }'''
    ev = {"id": "R-COUNTY-e9", "type": "REJECTED", "at": "2024-03-05T09:00:00+08:00", "unit": "510802",
          "data": {"reason": "不属于受理范围"}}
    a = await gw.gql(m, {"e": ev}, roles="operator")
    assert not a.errors, a.errors
    out = a.data["recordEvent"]
    assert out["status"] == "REJECTED"
    assert [e["id"] for e in out["events"]] == ["R-COUNTY-e1", "R-COUNTY-e9"]
    again = await gw.gql(m, {"e": ev}, roles="operator")  # the same event again changes nothing
    assert again.data == a.data
    async with transaction(gw.db.sessionmaker) as session:
        from sqlalchemy import func, select

        assert (await session.execute(select(func.count()).select_from(Event)
                                      .where(Event.complaint_id == "R-COUNTY"))).scalar_one() == 2


async def test_record_event_refuses_bad_input(gw: Gateway) -> None:
    m = 'mutation($e: EventInput!) { recordEvent(complaintId: "R-COUNTY", event: $e) { id } }'
    base = {"id": "x1", "type": "REJECTED", "at": "2024-03-05T09:00:00+08:00", "data": {"reason": "r"}}
    for bad in ({"data": {}}, {"at": "2024-03-05T09:00:00"}, {"unit": "999999"}, {"id": "R-STATION-e1"},
                {"type": "CALLBACK", "data": {"satisfaction": "MAYBE"}}):
        a = await gw.gql(m, {"e": {**base, **bad}}, roles="operator")
        assert a.status == 200 and a.codes() == ["BAD_USER_INPUT"], (bad, a.body)
    a = await gw.gql(m, {"e": base}, roles="reader")
    assert a.codes() == ["FORBIDDEN"]


async def test_suggest_case_lead_is_idempotent_per_complaint(gw: Gateway) -> None:
    with fresh_sim("enforcement") as sim:
        async with another_gateway(gw, enforcement_url=sim.url) as gw2:
            m = 'mutation { suggestCaseLead(complaintId: "R-STATION") { leadId status complaintId } }'
            first = await gw2.gql(m, roles="operator")
            second = await gw2.gql(m, roles="operator")
        assert not first.errors, first.errors
        assert first.data == second.data
        assert first.data["suggestCaseLead"]["status"] == "PENDING_REVIEW"
        keys = {r["idempotency_key"] for r in sim.requests() if r["route"].startswith("POST")}
        assert keys == {"case-lead-R-STATION"}
        assert len(sim.http.get("/_sim/leads").json()) == 1


async def test_escalate_incident_links_it_to_its_complaints(gw: Gateway) -> None:
    with fresh_sim("emergency") as sim:
        async with another_gateway(gw, emergency_url=sim.url) as gw2:
            await _escalate(gw2, sim)


async def _escalate(gw: Gateway, sim: Any) -> None:
    m = '''mutation { escalateIncident(complaintIds: ["R-STATION", "R-COUNTY"], summary: "多人食物中毒") {
             incidentId status complaintIds } }'''
    a = await gw.gql(m, roles="operator")
    assert not a.errors, a.errors
    inc = a.data["escalateIncident"]
    assert inc["status"] == "REPORTED" and inc["complaintIds"] == ["R-STATION", "R-COUNTY"]
    again = await gw.gql(m, roles="operator")  # a client's retry: the same incident, not a second one
    assert again.data["escalateIncident"]["incidentId"] == inc["incidentId"]
    assert len(sim.http.get("/_sim/incidents").json()) == 1
    b = await gw.gql('{ complaint(id: "R-COUNTY") { incidents { incidentId } } }')
    assert [i["incidentId"] for i in b.data["complaint"]["incidents"]] == [inc["incidentId"]]
    a = await gw.gql('mutation { escalateIncident(complaintIds: [], summary: "x") { incidentId } }', roles="operator")
    assert a.codes() == ["BAD_USER_INPUT"]
    a = await gw.gql('mutation { escalateIncident(complaintIds: ["R-STATION", "R-NATIONAL"], summary: "x") '
                     '{ incidentId } }', roles="operator", unit="510802")
    assert a.codes() == ["NOT_FOUND"]


def _instants(value: Any) -> list[str]:
    """Every string in an answer that is an RFC 3339 instant."""
    import re

    if isinstance(value, dict):
        return [s for v in value.values() for s in _instants(v)]
    if isinstance(value, list):
        return [s for v in value for s in _instants(v)]
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)", value):
        return [value]
    return []


async def test_every_instant_out_is_in_beijing_time(gw: Gateway) -> None:
    """interfaces.md 1.1: whatever offset an instant came with (the records here are stored from +08:00 and
    UTC texts, SQLite hands them back naive), every one leaves as +08:00."""
    a = await gw.gql('''{ complaint(id: "R-STATION") { receivedAt updatedAt events { at }
        deadlines { startsAt fulfilledAt } }
        complaints(first: 20) { nodes { receivedAt updatedAt events { at } } }
        kpiReport(unit: "510000", from: "2024-03-01", to: "2024-03-31", asOf: "2024-06-30T15:59:59Z") { asOf } }''',
                     unit="510000", roles="reader,evaluator")
    assert not a.errors, a.errors
    found = _instants(a.data)
    assert len(found) > 10
    assert all(s.endswith("+08:00") for s in found), [s for s in found if not s.endswith("+08:00")]
    assert a.data["complaint"]["deadlines"][0]["startsAt"] == "2024-03-07T09:30:00+08:00"
    assert a.data["kpiReport"]["asOf"] == "2024-06-30T23:59:59+08:00"
