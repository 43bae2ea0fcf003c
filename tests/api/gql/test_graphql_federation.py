"""Fan-out to the external systems: one request per system for a page of records, partial answers when a
system fails or is not configured."""

from __future__ import annotations

import asyncio

import pytest

from gateway.core.db import transaction
from gateway.flags.models import IncidentLink
from gateway.ingest.store import ingest_raw
from tests.api.gql.conftest import SYSTEMS, Gateway, another_gateway
from tests.api.gql.gql_support import PLACES, case_for, event, incident_for, record

PAGE = """{ complaints(first: 100) { nodes { id
  enterprise { uscc creditProfile { name riskLevel } }
  cases { caseNo status }
  incidents { incidentId status } } } }"""


async def _many_records(gw: Gateway, n: int) -> list[str]:
    """n more records, each with its own enterprise, case and incident."""
    from tests.api.gql.gql_support import valid_uscc

    ids = [f"BULK-{i:04d}" for i in range(n)]
    records = [
        record(rid, respondent={"uscc": valid_uscc(f"9151080000000{i:04d}"), "name": f"企业{i}"},
               received_at="2024-05-01T09:00:00+08:00",
               events=[event(f"{rid}-e1", "ACCEPTED", "2024-05-02T09:00:00+08:00")])
        for i, rid in enumerate(ids)
    ]
    async with transaction(gw.db.sessionmaker) as session:
        assert not (await ingest_raw(session, records)).rejected
        session.add_all(IncidentLink(complaint_id=rid, incident_id=f"INC-{rid}", created_at=record_time())
                        for rid in ids)
    gw.sims["enforcement"].seed({"cases": [case_for(rid, "510802001") for rid in ids]})
    gw.sims["emergency"].seed({"incidents": [incident_for(rid) for rid in ids]})
    for sim in gw.sims.values():
        sim.reset()
    return ids


def record_time():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def test_a_page_of_100_makes_one_request_per_system(gw: Gateway) -> None:
    ids = await _many_records(gw, 100)
    a = await gw.gql(PAGE)
    assert a.status == 200 and not a.errors, a.errors
    nodes = a.data["complaints"]["nodes"]
    assert [n["id"] for n in nodes] == sorted(ids, reverse=True)  # same instant: by id, newest first
    assert all(n["enterprise"]["creditProfile"]["name"] for n in nodes)
    assert all(n["cases"] == [{"caseNo": f"CASE-{n['id']}", "status": "INVESTIGATING"}] for n in nodes)
    assert all(n["incidents"] == [{"incidentId": f"INC-{n['id']}", "status": "DISPATCHED"}] for n in nodes)
    for system in ("credit", "enforcement", "emergency"):
        assert gw.sims[system].total_requests() == 1, system
    assert gw.sims["complaints"].total_requests() == 0


async def test_more_than_100_keys_are_split_into_batches_of_100(gw: Gateway) -> None:
    await _many_records(gw, 150)
    a = await gw.gql("{ complaints(first: 158) { nodes { id cases { caseNo } incidents { incidentId } } } }")
    assert not a.errors, a.errors
    assert len(a.data["complaints"]["nodes"]) == 158
    for system in ("enforcement", "emergency"):
        assert gw.sims[system].total_requests() == 2, system  # 158 complaint ids -> 100 + 58


async def test_upstream_calls_run_concurrently(gw: Gateway) -> None:
    for system in ("credit", "enforcement", "emergency"):
        gw.sims[system].faults(latency_ms=300)
    started = asyncio.get_running_loop().time()
    a = await gw.gql('{ complaint(id: "R-STATION") { enterprise { creditProfile { name } } cases { caseNo } '
                     'incidents { incidentId } } }')
    elapsed = asyncio.get_running_loop().time() - started
    assert not a.errors
    assert elapsed < 0.75, f"three 300 ms systems took {elapsed:.2f}s: not concurrent"


async def test_complaint_reads_its_incident_links_with_the_record(gw: Gateway) -> None:
    """complaint(id) { incidents } reads the record and its links in one lookup: every link, in the order
    they were made; none for a record without links; nothing at all outside the caller's jurisdiction."""
    from datetime import timedelta

    later = record_time() + timedelta(hours=1)
    async with transaction(gw.db.sessionmaker) as session:
        session.add(IncidentLink(complaint_id="R-STATION", incident_id="INC-A-SECOND", created_at=later))
        await session.execute(IncidentLink.__table__.delete().where(IncidentLink.complaint_id == "R-COUNTY"))
    gw.sims["emergency"].seed({"incidents": [incident_for("R-STATION") | {"incident_id": "INC-A-SECOND"}]})
    gw.sims["emergency"].reset()

    query = 'query($id: ID!) { complaint(id: $id) { id incidents { incidentId } } }'
    a = await gw.gql(query, {"id": "R-STATION"})
    assert not a.errors, a.errors
    assert a.data["complaint"]["incidents"] == [{"incidentId": "INC-R-STATION"}, {"incidentId": "INC-A-SECOND"}]
    assert gw.sims["emergency"].total_requests() == 1

    b = await gw.gql(query, {"id": "R-COUNTY"})
    assert not b.errors and b.data["complaint"] == {"id": "R-COUNTY", "incidents": []}

    c = await gw.gql(query, {"id": "R-STATION-SIB"}, unit="510802001")  # a sibling station's record
    assert not c.errors and c.data == {"complaint": None}
    assert await gw.gql(query, {"id": "NOPE"}) and gw.sims["emergency"].total_requests() == 1

    # the record asked for twice, with and without its incidents: one answer for both
    d = await gw.gql('{ a: complaint(id: "R-STATION") { id summary } '
                     'b: complaint(id: "R-STATION") { summary incidents { incidentId } } }')
    assert not d.errors and d.data["a"]["summary"] == d.data["b"]["summary"]
    assert len(d.data["b"]["incidents"]) == 2


@pytest.mark.parametrize("down", ["credit", "enforcement", "emergency"])
async def test_a_system_down_nulls_only_its_fields(gw: Gateway, down: str) -> None:
    gw.sims[down].faults(outage="503")
    a = await gw.gql('{ complaint(id: "R-STATION") { id summary enterprise { uscc creditProfile { name } } '
                     'cases { caseNo } incidents { incidentId } } }')
    assert a.status == 200
    c = a.data["complaint"]
    assert c["id"] == "R-STATION" and c["summary"]
    field = {"credit": "enterprise", "enforcement": "cases", "emergency": "incidents"}[down]
    for other in ("cases", "incidents"):
        if other != field:
            assert c[other], other
    if down == "credit":
        assert c["enterprise"] == {"uscc": "91110000802100433B", "creditProfile": None}
        path = ["complaint", "enterprise", "creditProfile"]
    else:
        assert c[field] is None
        path = ["complaint", field]
    assert len(a.errors) == 1
    err = a.errors[0]
    assert err["path"] == path
    assert err["extensions"] == {"code": "UPSTREAM_UNAVAILABLE", "system": down}


async def test_a_broken_answer_is_upstream_error(gw: Gateway) -> None:
    gw.sims["enforcement"].faults(outage="malformed")  # once would be retried (test_hostile_upstreams.py)
    a = await gw.gql('{ complaint(id: "R-STATION") { id cases { caseNo } } }')
    assert a.data["complaint"] == {"id": "R-STATION", "cases": None}
    assert a.errors[0]["extensions"] == {"code": "UPSTREAM_ERROR", "system": "enforcement"}


async def test_a_failing_batch_gives_one_error_per_field_and_everything_else(gw: Gateway) -> None:
    gw.sims["emergency"].faults(outage="reset")
    a = await gw.gql(PAGE)
    nodes = a.data["complaints"]["nodes"]
    assert len(nodes) == len(PLACES)
    assert all(n["incidents"] is None and n["cases"] for n in nodes)
    assert {tuple(e["path"][-1:]) for e in a.errors} == {("incidents",)}
    assert len(a.errors) == len(PLACES)
    assert gw.sims["emergency"].total_requests() <= 2  # one call, retried at most once: not one per record


@pytest.mark.parametrize("missing", ["credit", "enforcement", "emergency"])
async def test_an_unconfigured_system_is_upstream_not_configured(gw: Gateway, missing: str) -> None:
    async with another_gateway(gw, **{f"{missing}_url": None}) as gw2:
        a = await gw2.gql('{ complaint(id: "R-STATION") { id enterprise { creditProfile { name } } '
                          'cases { caseNo } incidents { incidentId } } }')
    assert a.status == 200 and a.data["complaint"]["id"] == "R-STATION"
    assert [e["extensions"]["code"] for e in a.errors] == ["UPSTREAM_NOT_CONFIGURED"]
    assert gw.sims[missing].total_requests() == 0
    assert set(SYSTEMS) >= {missing}
