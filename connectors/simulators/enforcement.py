"""Enforcement-case system simulator: cases by number or complaint id, and case leads.

Extra control routes: POST /_sim/seed {"cases": [Case, ...], "complaint_ids": [...]} stores the given cases
and makes one generated case for each complaint id; GET /_sim/leads lists the leads received.
"""

from __future__ import annotations

import random
import re
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError, field_validator

from connectors.simulators.base import (
    Faults,
    SimLayer,
    idempotent_write,
    new_app,
    split_ids,
    too_many,
    unprocessable,
)
from connectors.simulators.data import make_case, now_ts


def _rfc3339(value: str) -> str:
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value):
        raise ValueError("must be an RFC 3339 timestamp with offset")
    datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


class LeadIn(BaseModel):
    complaint_id: str
    respondent_uscc: str | None
    unit_code: str
    summary: str
    suggested_at: str

    _ts = field_validator("suggested_at")(_rfc3339)

    @field_validator("unit_code")
    @classmethod
    def _unit(cls, v: str) -> str:
        if not re.fullmatch(r"\d{6}(\d{3})?", v):
            raise ValueError("must be a unit code")
        return v


class Cases:
    def __init__(self) -> None:
        self.by_no: dict[str, dict[str, Any]] = {}
        self.by_complaint: dict[str, list[str]] = {}
        self.leads: dict[str, dict[str, Any]] = {}

    def put(self, case: dict[str, Any]) -> None:
        old = self.by_no.get(case["case_no"])
        for cid in old["complaint_ids"] if old else []:
            self.by_complaint[cid].remove(case["case_no"])
        self.by_no[case["case_no"]] = case
        for cid in case["complaint_ids"]:
            self.by_complaint.setdefault(cid, []).append(case["case_no"])


def create_app(
    cases: list[dict[str, Any]] | None = None,
    *,
    token: str | None = None,
    faults: Faults | None = None,
    seed: int | None = None,
) -> SimLayer:
    app, sim = new_app("enforcement", token, faults, seed)
    store = Cases()
    for case in cases or []:
        store.put(case)
    rng = random.Random(seed)

    @app.get("/api/v1/cases")
    async def get_cases(ids: str | None = None, complaint_ids: str | None = None) -> Any:
        if (ids is None) == (complaint_ids is None):
            return JSONResponse({"error": "give exactly one of ids or complaint_ids"}, status_code=400)
        wanted = split_ids(ids if ids is not None else complaint_ids)
        if refused := too_many(wanted):
            return refused
        if ids is not None:
            found = [store.by_no[n] for n in dict.fromkeys(wanted) if n in store.by_no]
        else:
            nos = dict.fromkeys(n for cid in wanted for n in store.by_complaint.get(cid, []))
            found = [store.by_no[n] for n in nos]
        return {"cases": found}

    @app.post("/api/v1/case-leads")
    async def create_lead(request: Request) -> JSONResponse:
        def act(payload: Any) -> dict[str, Any] | JSONResponse:
            try:
                lead = LeadIn.model_validate(payload)
            except ValidationError as exc:
                return unprocessable(str(exc.errors(include_url=False)[0]["msg"]))
            lead_id = f"CL{len(store.leads) + 1:08d}"
            store.leads[lead_id] = {**lead.model_dump(), "lead_id": lead_id, "status": "PENDING_REVIEW"}
            return {"lead_id": lead_id, "status": "PENDING_REVIEW"}

        return await idempotent_write(sim, request, "POST /api/v1/case-leads", act)

    @app.post("/_sim/seed")
    async def seed_cases(request: Request) -> Any:
        body = await request.json()
        made = []
        for case in body.get("cases", []):
            store.put(case)
            made.append(case)
        for cid in body.get("complaint_ids", []):
            case = make_case(rng, f"SIM-{len(store.by_no) + 1:06d}", [cid], body.get("unit_code", "510802"),
                             body.get("respondent_uscc"), now_ts())
            store.put(case)
            made.append(case)
        return {"cases": made}

    @app.get("/_sim/leads")
    async def leads() -> list[dict[str, Any]]:
        return list(store.leads.values())

    layer = SimLayer(app, sim, lambda method, path: f"{method} {path}")
    layer.data = store
    return layer
