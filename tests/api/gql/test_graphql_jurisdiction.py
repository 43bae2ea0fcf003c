"""Jurisdiction (属地): five callers x records in their own subtree, a sibling's and a superior's, over every
root field and nested list. The expected sets are written out in gql_support.VISIBLE."""

from __future__ import annotations

import pytest

from tests.api.gql.conftest import Gateway, another_gateway, fresh_sim
from tests.api.gql.gql_support import CALLERS, PLACES, USCC_A, VISIBLE

MATRIX = [(caller, rid) for caller in CALLERS for rid in PLACES]


@pytest.mark.parametrize("caller", list(CALLERS))
async def test_lookups_and_lists(gw: Gateway, caller: str) -> None:
    # every record by id, in one query through aliases
    lookups = " ".join(f'r{i}: complaint(id: "{rid}") {{ id }}' for i, rid in enumerate(sorted(PLACES)))
    a = await gw.as_caller(caller, f"{{ {lookups} }}")
    assert not a.errors
    seen = {v["id"] for v in a.data.values() if v is not None}
    assert seen == VISIBLE[caller]

    a = await gw.as_caller(caller, "{ complaints(first: 500) { totalCount nodes { id } } }")
    assert {n["id"] for n in a.data["complaints"]["nodes"]} == VISIBLE[caller]
    assert a.data["complaints"]["totalCount"] == len(VISIBLE[caller])

    # enterprise-level aggregates count only visible records
    a = await gw.as_caller(caller, f'{{ enterprise(uscc: "{USCC_A}") {{ complaintCount '
                                   f'complaints(first: 500) {{ nodes {{ id }} }} cases {{ caseNo }} }} }}')
    ent = a.data["enterprise"]
    assert ent["complaintCount"] == len(VISIBLE[caller])
    assert {n["id"] for n in ent["complaints"]["nodes"]} == VISIBLE[caller]
    assert {c["caseNo"] for c in ent["cases"]} == {f"CASE-{rid}" for rid in VISIBLE[caller]}


@pytest.mark.parametrize("caller", list(CALLERS))
async def test_unit_tree_is_cut_at_the_callers_unit(gw: Gateway, caller: str) -> None:
    units = {"100000", "510000", "510800", "510802", "510802001", "510802002", "510811", "510100"}
    lookups = " ".join(f'u{code}: orgUnit(code: "{code}") {{ code parent {{ code }} }}' for code in sorted(units))
    a = await gw.as_caller(caller, f"{{ {lookups} }}")
    own = CALLERS[caller]
    seen = {v["code"]: v for v in a.data.values() if v is not None}
    # written out per caller instead of computed, for the same reason as VISIBLE
    expected = {
        "national": units,
        "province": units - {"100000"},
        "city": {"510800", "510802", "510802001", "510802002", "510811"},
        "county": {"510802", "510802001", "510802002"},
        "station": {"510802001"},
    }[caller]
    assert set(seen) == expected
    assert seen[own]["parent"] is None  # a caller does not see above itself
    a = await gw.as_caller(caller, f'{{ orgUnit(code: "{own}") {{ children {{ code }} }} }}')
    assert a.data["orgUnit"]["children"] is not None


async def test_filter_by_a_foreign_unit_finds_nothing(gw: Gateway) -> None:
    a = await gw.as_caller("county", '{ complaints(filter: {unit: "510104"}) { nodes { id } } }')
    assert a.data["complaints"]["nodes"] == []
    a = await gw.as_caller("county", '{ complaints(filter: {unit: "510802001"}) { nodes { id } } }')
    assert {n["id"] for n in a.data["complaints"]["nodes"]} == {"R-STATION"}


@pytest.mark.parametrize("caller", list(CALLERS))
async def test_mutations_outside_are_not_found(gw: Gateway, caller: str) -> None:
    with fresh_sim("enforcement") as sim:
        async with another_gateway(gw, enforcement_url=sim.url) as gw2:
            await _suggest_everywhere(gw2, caller)


async def _suggest_everywhere(gw: Gateway, caller: str) -> None:
    for rid in sorted(PLACES):
        a = await gw.as_caller(caller, f'mutation {{ suggestCaseLead(complaintId: "{rid}") {{ leadId }} }}',
                               roles="operator")
        if rid in VISIBLE[caller]:
            assert a.data["suggestCaseLead"]["leadId"], (caller, rid)
        else:
            assert a.data["suggestCaseLead"] is None and a.codes() == ["NOT_FOUND"], (caller, rid)


@pytest.mark.parametrize("caller", list(CALLERS))
async def test_kpi_report_only_for_own_subtree(gw: Gateway, caller: str) -> None:
    q = '{ kpiReport(unit: "%s", from: "2024-03-01", to: "2024-03-31") { level } }'
    for unit in ("100000", "510000", "510800", "510802", "510104"):
        a = await gw.as_caller(caller, q % unit, roles="evaluator")
        inside = unit in {
            "national": {"100000", "510000", "510800", "510802", "510104"},
            "province": {"510000", "510800", "510802", "510104"},
            "city": {"510800", "510802"},
            "county": {"510802"},
            "station": set(),
        }[caller]
        if inside:
            assert "FORBIDDEN" not in a.codes(), (caller, unit)
        else:
            assert a.codes() == ["FORBIDDEN"], (caller, unit)


@pytest.mark.parametrize("caller", list(CALLERS))
async def test_record_event_outside_is_not_found(gw: Gateway, caller: str) -> None:
    m = 'mutation($id: ID!, $e: EventInput!) { recordEvent(complaintId: $id, event: $e) { id } }'
    for rid in sorted(set(PLACES) - VISIBLE[caller]):
        ev = {"id": f"{rid}-{caller}", "type": "ACCEPTED", "at": "2024-03-20T09:00:00+08:00"}
        a = await gw.as_caller(caller, m, {"id": rid, "e": ev}, roles="operator")
        assert a.data == {"recordEvent": None} and a.codes() == ["NOT_FOUND"], (caller, rid)


async def test_credit_flags_by_jurisdiction(gw: Gateway) -> None:
    """A CRITICAL food record with a respondent raises a CRITICAL_SAFETY flag issued by its handling unit."""
    from gateway.core.db import transaction
    from gateway.ingest.store import ingest_raw
    from tests.api.gql.gql_support import event, record, valid_uscc

    usccs = {rid: valid_uscc(f"915108000000000{n:02d}") for n, rid in enumerate(sorted(PLACES))}
    critical = [
        record(f"X{rid}", kind="INQUIRY", urgency="CRITICAL", category="FOOD", handling_unit=unit,
               respondent={"uscc": usccs[rid], "name": "某食品厂"},
               events=[event(f"X{rid}-e1", "DISPATCHED", "2024-03-01T10:00:00+08:00", {"to": unit}, unit)])
        for rid, unit in PLACES.items()
    ]
    async with transaction(gw.db.sessionmaker) as session:
        assert not (await ingest_raw(session, critical)).rejected
    for caller in CALLERS:
        a = await gw.as_caller(caller, "{ creditFlags(first: 100) { nodes { uscc reason issuedBy } } }",
                               roles="credit")
        assert not a.errors, a.errors
        nodes = a.data["creditFlags"]["nodes"]
        critical = {n["uscc"] for n in nodes if n["reason"] == "CRITICAL_SAFETY"}
        assert critical == {usccs[rid] for rid in VISIBLE[caller]}, caller
        # the world's 8 records about enterprise A are a surge, issued by the unit above them all: national
        surges = [n for n in nodes if n["reason"] == "COMPLAINT_SURGE"]
        assert surges == ([{"uscc": USCC_A, "reason": "COMPLAINT_SURGE", "issuedBy": "100000"}]
                          if caller == "national" else []), caller
