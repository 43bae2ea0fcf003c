"""Every operation of the four contracts, through the connectors, against the simulators."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from connectors.models import CaseLeadRequest, ComplaintFlag, IncidentRequest
from connectors.simulators import make_uscc
from tests.connectors.conftest import RECORDS, Make, Sim


async def test_changes_feed_pages_through_everything(make: Make, sims: dict[str, Sim]) -> None:
    complaints = make("complaints")
    seen, cursor, pages = [], None, 0
    while True:
        page = await complaints.changes(cursor, limit=100)
        seen += [r["id"] for r in page.items]
        cursor, pages = page.next_cursor, pages + 1
        if not page.has_more:
            break
    assert seen[: len(RECORDS)] == [r["id"] for r in RECORDS]
    assert pages >= 3
    # Nothing new: an empty page, the cursor stays usable.
    again = await complaints.changes(cursor)
    assert again.items == [] and not again.has_more


async def test_changes_feed_shows_a_changed_record_again(make: Make, sims: dict[str, Sim]) -> None:
    complaints = make("complaints")
    page = await complaints.changes(None, limit=1000)
    while page.has_more:
        page = await complaints.changes(page.next_cursor, limit=1000)
    changed = {**RECORDS[3], "summary": "更新后的内容"}
    sims["complaints"].post("/_sim/records", {"items": [changed]})
    later = await complaints.changes(page.next_cursor)
    assert [r["summary"] for r in later.items] == ["更新后的内容"]
    assert await complaints.get(RECORDS[3]["id"]) == changed


async def test_get_complaint(make: Make) -> None:
    complaints = make("complaints")
    assert await complaints.get(RECORDS[0]["id"]) == RECORDS[0]
    assert await complaints.get("NO-SUCH-ID") is None


async def test_cases_by_ids_and_complaint_ids_in_batches(make: Make, sims: dict[str, Sim]) -> None:
    complaint_ids = [f"B{i:04d}" for i in range(150)]
    seeded = sims["enforcement"].post("/_sim/seed", {"complaint_ids": complaint_ids})["cases"]
    enforcement = make("enforcement")
    by_complaint = await enforcement.cases_by_complaint_ids([*complaint_ids, "UNKNOWN"])
    assert sorted(c.case_no for c in by_complaint) == sorted(c["case_no"] for c in seeded)
    case_nos = [c["case_no"] for c in seeded] + [f"MISSING-{i}" for i in range(60)]
    by_no = await enforcement.cases_by_ids(case_nos)
    assert {c.case_no for c in by_no} == {c["case_no"] for c in seeded}
    requests = sims["enforcement"].stats()["requests"]["GET /api/v1/cases"]
    assert requests == 2 + 3  # 151 complaint ids in 2 batches, 210 case numbers in 3
    assert all(len(r["query"]) < 100 * 20 for r in sims["enforcement"].requests())


async def test_cases_from_generated_reports_link_to_complaints(make: Make, sims: dict[str, Sim]) -> None:
    from connectors.simulators import cases_from_records

    cases = cases_from_records(RECORDS)
    assert cases, "the generated world has case-filed reports"
    sims["enforcement"].post("/_sim/seed", {"cases": cases})
    found = await make("enforcement").cases_by_complaint_ids([cases[0]["complaint_ids"][0]])
    assert found[0].case_no == cases[0]["case_no"]


async def test_create_case_lead(make: Make, sims: dict[str, Sim]) -> None:
    lead = CaseLeadRequest(complaint_id="C00000009", respondent_uscc=None, unit_code="510802",
                           summary="疑似销售假冒商品", suggested_at=datetime(2024, 5, 1, 9, tzinfo=UTC))
    result = await make("enforcement").create_case_lead(lead)
    assert result.status == "PENDING_REVIEW" and result.lead_id
    leads = sims["enforcement"].http.get("/_sim/leads").json()
    assert [x["lead_id"] for x in leads if x["complaint_id"] == "C00000009"] == [result.lead_id]


async def test_enterprises_generated_seeded_and_absent(make: Make, sims: dict[str, Sim]) -> None:
    rng = random.Random(3)
    codes = [make_uscc(rng) for _ in range(230)]
    seeded = {**(await make("credit").enterprises([codes[0]]))[0].model_dump(mode="json"), "name": "种子企业"}
    sims["credit"].post("/_sim/seed", {"enterprises": [seeded], "absent": [codes[1]]})
    credit = make("credit")
    found = await credit.enterprises([*codes, "91110000600037341X", "not-a-code"])
    by_code = {e.uscc: e for e in found}
    assert set(by_code) == set(codes) - {codes[1]}
    assert by_code[codes[0]].name == "种子企业"
    assert (await credit.enterprise(codes[2])) == by_code[codes[2]]  # deterministic from the code
    assert sims["credit"].stats()["requests"]["GET /api/v1/enterprises"] == 3 + 1 + 1


async def test_flags_post_list_and_no_double_flag(make: Make, sims: dict[str, Sim]) -> None:
    uscc = make_uscc(random.Random(9))
    flag = ComplaintFlag(
        flag_id="COMPLAINT_SURGE:" + uscc + ":2024-05", uscc=uscc, reason="COMPLAINT_SURGE", severity="MEDIUM",
        complaint_ids=["C1", "C2", "C3", "C4", "C5"], window_start=datetime(2024, 4, 30, 16, tzinfo=UTC),
        window_end=datetime(2024, 5, 31, 16, tzinfo=UTC), issued_by="510802",
        issued_at=datetime(2024, 5, 20, tzinfo=UTC),
    )
    credit = make("credit")
    sims["credit"].faults(script=["503-after"])  # the first answer is lost: the retry must not flag twice
    receipt = await credit.post_flag(flag)
    again = await credit.post_flag(flag)  # a redelivery later: same stable key, a replay
    assert receipt == again and receipt.flag_id == flag.flag_id
    assert sims["credit"].stats()["effects"] == {"POST /api/v1/complaint-flags": 1}
    assert await credit.flags(uscc) == [flag]


async def test_incidents_create_and_read_in_batches(make: Make, sims: dict[str, Sim]) -> None:
    emergency = make("emergency")
    made = [
        await emergency.create_incident(IncidentRequest(
            complaint_ids=[f"C{i}"], category="FOOD", urgency="CRITICAL", unit_code="510802",
            summary="群体性食物中毒", reported_at=datetime(2024, 5, 1, tzinfo=UTC)))
        for i in range(3)
    ]
    ids = [m.incident_id for m in made]
    found = await emergency.incidents_by_ids([*ids, *[f"INC-NONE-{i}" for i in range(120)]])
    assert sorted(i.incident_id for i in found) == sorted(ids)
    assert all(i.status == "REPORTED" for i in found)


@pytest.mark.parametrize("limit", [0, 1001])
async def test_changes_limit_is_checked(make: Make, limit: int) -> None:
    with pytest.raises(ValueError):
        await make("complaints").changes(None, limit=limit)
