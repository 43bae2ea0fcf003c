"""Emergency-command system simulator: incidents.

With `advance_s`, an incident moves one status on (REPORTED -> DISPATCHED -> ON_SCENE -> RESOLVED) every
`advance_s` seconds after it was reported, and gets its commanding unit when dispatched. Extra control
routes: POST /_sim/seed {"incidents": [Incident, ...]}; GET /_sim/incidents.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError, field_validator

from connectors.simulators.base import (
    Faults,
    SimLayer,
    idempotent_write,
    new_app,
    split_ids,
    too_many,
    unprocessable,
)
from connectors.simulators.data import CST
from connectors.simulators.enforcement import _rfc3339

STATUSES = ("REPORTED", "DISPATCHED", "ON_SCENE", "RESOLVED")


class IncidentIn(BaseModel):
    source: Literal["12315"]
    complaint_ids: list[str] = Field(min_length=1)
    category: str
    urgency: str
    unit_code: str = Field(pattern=r"^\d{6}(\d{3})?$")
    summary: str
    reported_at: str

    _ts = field_validator("reported_at")(_rfc3339)


class Incidents:
    def __init__(self, advance_s: float | None) -> None:
        self.advance_s = advance_s
        self.items: dict[str, dict[str, Any]] = {}
        self.created: dict[str, float] = {}  # monotonic time of creation, for status progress

    def view(self, incident_id: str) -> dict[str, Any]:
        inc = self.items[incident_id]
        if self.advance_s and incident_id in self.created and inc["status"] != "RESOLVED":
            age = time.monotonic() - self.created[incident_id]
            step = min(int(age / self.advance_s), len(STATUSES) - 1)
            if STATUSES.index(inc["status"]) < step:
                inc["status"] = STATUSES[step]
                inc["commanding_unit"] = inc["commanding_unit"] or inc.pop("_unit", None)
                when = datetime.now(UTC) - timedelta(seconds=age - step * self.advance_s)
                inc["updated_at"] = when.astimezone(CST).isoformat(timespec="seconds")
        return {k: v for k, v in inc.items() if not k.startswith("_")}


def create_app(
    incidents: list[dict[str, Any]] | None = None,
    *,
    advance_s: float | None = None,
    token: str | None = None,
    faults: Faults | None = None,
    seed: int | None = None,
) -> SimLayer:
    app, sim = new_app("emergency", token, faults, seed)
    store = Incidents(advance_s)
    for inc in incidents or []:
        store.items[inc["incident_id"]] = inc

    @app.post("/api/v1/incidents")
    async def create_incident(request: Request) -> JSONResponse:
        def act(payload: Any) -> dict[str, Any] | JSONResponse:
            try:
                req = IncidentIn.model_validate(payload)
            except ValidationError as exc:
                err = exc.errors(include_url=False)[0]
                return unprocessable(f"{'.'.join(map(str, err['loc']))}: {err['msg']}")
            now = datetime.now(CST)
            incident_id = f"INC{now:%Y%m%d}{len(store.items) + 1:06d}"
            store.items[incident_id] = {
                "incident_id": incident_id,
                "complaint_ids": req.complaint_ids,
                "status": "REPORTED",
                "commanding_unit": None,
                "updated_at": now.isoformat(timespec="seconds"),
                "_unit": req.unit_code,
            }
            store.created[incident_id] = time.monotonic()
            return {"incident_id": incident_id, "status": "REPORTED"}

        return await idempotent_write(sim, request, "POST /api/v1/incidents", act)

    @app.get("/api/v1/incidents")
    async def get_incidents(ids: str | None = None) -> Any:
        wanted = split_ids(ids)
        if not wanted:
            return JSONResponse({"error": "ids is required"}, status_code=400)
        if refused := too_many(wanted):
            return refused
        return {"incidents": [store.view(i) for i in dict.fromkeys(wanted) if i in store.items]}

    @app.post("/_sim/seed")
    async def seed_incidents(request: Request) -> Any:
        body = await request.json()
        for inc in body.get("incidents", []):
            store.items[inc["incident_id"]] = inc
        return {"incidents": len(store.items)}

    @app.get("/_sim/incidents")
    async def all_incidents() -> list[dict[str, Any]]:
        return [store.view(i) for i in store.items]

    layer = SimLayer(app, sim, lambda method, path: f"{method} {path}")
    layer.data = store
    return layer
