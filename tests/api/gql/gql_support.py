"""The GraphQL tests' world: a unit tree, records placed across it, and the callers of the matrix."""

from __future__ import annotations

from typing import Any

from factories import UNITS_CSV, event, record  # noqa: F401  (re-exported for the tests)

SECRET = "graphql-test-secret-0123456789abcdef"
SIM_TOKEN = "sim-token"

USCC_A = "91110000802100433B"
USCC_B = "91510800MA62A1B2C3"  # replaced below by a computed valid code

# Records by where they sit in the tree; the matrix below says who may see which.
PLACES: dict[str, str] = {
    "R-STATION": "510802001",  # a station
    "R-STATION-SIB": "510802002",  # its sibling station
    "R-COUNTY": "510802",  # the county above both
    "R-COUNTY-SIB": "510811001",  # a station of the sibling county
    "R-CITY": "510800",  # the city
    "R-CITY-SIB": "510104001",  # a station of the sibling city
    "R-PROVINCE": "510000",  # the province
    "R-NATIONAL": "100000",  # the national administration
}

CALLERS: dict[str, str] = {
    "national": "100000",
    "province": "510000",
    "city": "510800",
    "county": "510802",
    "station": "510802001",
}

# Who sees what, written out (not derived) so that a wrong jurisdiction rule cannot pass by agreement.
VISIBLE: dict[str, set[str]] = {
    "national": set(PLACES),
    "province": set(PLACES) - {"R-NATIONAL"},
    "city": {"R-STATION", "R-STATION-SIB", "R-COUNTY", "R-COUNTY-SIB", "R-CITY"},
    "county": {"R-STATION", "R-STATION-SIB", "R-COUNTY"},
    "station": {"R-STATION"},
}


def valid_uscc(body17: str) -> str:
    from stdnum.cn import uscc

    return body17 + uscc.calc_check_digit(body17)


USCC_B = valid_uscc("91510800MA62A1B2C")


def world() -> list[dict[str, Any]]:
    """One record per place, all about enterprise A; R-STATION is a real-name REPORT with a case."""
    out = []
    for n, (rid, unit) in enumerate(sorted(PLACES.items())):
        out.append(record(
            rid,
            kind="REPORT" if rid == "R-STATION" else "COMPLAINT",
            handling_unit=unit,
            received_at=f"2024-03-{n + 1:02d}T09:30:00+08:00",
            region_code="510802",
            complainant={"name": "张三丰", "phone": "13812345678", "real_name": True},
            events=[event(f"{rid}-e1", "DISPATCHED", f"2024-03-{n + 1:02d}T10:00:00+08:00", {"to": unit}, unit)],
        ))
    return out


def case_for(complaint_id: str, unit: str, uscc: str = USCC_A) -> dict[str, Any]:
    return {
        "case_no": f"CASE-{complaint_id}", "lead_id": None, "complaint_ids": [complaint_id],
        "respondent_uscc": uscc, "unit_code": unit, "status": "INVESTIGATING", "violation": None,
        "penalty_amount": None, "filed_at": "2024-03-20T10:00:00+08:00", "closed_at": None,
    }


def incident_for(complaint_id: str) -> dict[str, Any]:
    return {
        "incident_id": f"INC-{complaint_id}", "complaint_ids": [complaint_id], "status": "DISPATCHED",
        "commanding_unit": "510800", "updated_at": "2024-03-21T10:00:00+08:00",
    }
