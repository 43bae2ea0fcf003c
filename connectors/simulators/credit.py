"""Enterprise credit system simulator: enterprises by USCC, complaint flags.

Any syntactically valid USCC resolves to a generated enterprise derived from its hash (so the demo's
respondents resolve); seeded enterprises take precedence. Extra control routes: POST /_sim/seed
{"enterprises": [Enterprise, ...], "absent": [uscc, ...]}; GET /_sim/flags (every flag with the number of
times its flag_id was received).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError, field_validator
from stdnum.cn import uscc as stdnum_uscc

from connectors.simulators.base import (
    Faults,
    SimLayer,
    idempotent_write,
    new_app,
    split_ids,
    too_many,
    unprocessable,
)
from connectors.simulators.data import enterprise_for, now_ts
from connectors.simulators.enforcement import _rfc3339


class FlagIn(BaseModel):
    flag_id: str = Field(min_length=1)
    uscc: str
    reason: str = Field(pattern=r"^(COMPLAINT_SURGE|CASE_FILED_FROM_REPORT|CRITICAL_SAFETY)$")
    severity: str = Field(pattern=r"^(LOW|MEDIUM|HIGH)$")
    complaint_ids: list[str]
    window_start: str
    window_end: str
    issued_by: str = Field(pattern=r"^\d{6}(\d{3})?$")
    issued_at: str

    _ts = field_validator("window_start", "window_end", "issued_at")(_rfc3339)

    @field_validator("uscc")
    @classmethod
    def _uscc(cls, v: str) -> str:
        if len(v) != 18 or not stdnum_uscc.is_valid(v):
            raise ValueError("not a valid USCC")
        return v


class Registry:
    def __init__(self, generate: bool) -> None:
        self.generate = generate
        self.enterprises: dict[str, dict[str, Any]] = {}
        self.absent: set[str] = set()
        self.flags: dict[str, dict[str, Any]] = {}  # flag_id -> flag as received first, with received_at
        self.received: Counter[str] = Counter()  # flag_id -> times received under a new idempotency key

    def lookup(self, uscc: str) -> dict[str, Any] | None:
        if uscc in self.enterprises:
            return self.enterprises[uscc]
        if not self.generate or uscc in self.absent or len(uscc) != 18 or not stdnum_uscc.is_valid(uscc):
            return None
        return enterprise_for(uscc)


def create_app(
    enterprises: list[dict[str, Any]] | None = None,
    *,
    generate: bool = True,
    token: str | None = None,
    faults: Faults | None = None,
    seed: int | None = None,
) -> SimLayer:
    app, sim = new_app("credit", token, faults, seed)
    reg = Registry(generate)
    for ent in enterprises or []:
        reg.enterprises[ent["uscc"]] = ent

    @app.get("/api/v1/enterprises")
    async def get_enterprises(uscc: str | None = None) -> Any:
        wanted = split_ids(uscc)
        if not wanted:
            return JSONResponse({"error": "uscc is required"}, status_code=400)
        if refused := too_many(wanted):
            return refused
        found = [e for u in dict.fromkeys(wanted) if (e := reg.lookup(u)) is not None]
        return {"enterprises": found}

    @app.post("/api/v1/complaint-flags")
    async def post_flag(request: Request) -> JSONResponse:
        def act(payload: Any) -> dict[str, Any] | JSONResponse:
            try:
                flag = FlagIn.model_validate(payload)
            except ValidationError as exc:
                err = exc.errors(include_url=False)[0]
                return unprocessable(f"{'.'.join(map(str, err['loc']))}: {err['msg']}")
            reg.received[flag.flag_id] += 1
            if flag.flag_id in reg.flags:  # same finding sent again under a new key: still one flag
                sim.counters["duplicate_flag_ids"] += 1
            else:
                reg.flags[flag.flag_id] = {**flag.model_dump(), "received_at": now_ts()}
            return {"flag_id": flag.flag_id, "received_at": reg.flags[flag.flag_id]["received_at"]}

        return await idempotent_write(sim, request, "POST /api/v1/complaint-flags", act)

    @app.get("/api/v1/complaint-flags")
    async def list_flags(uscc: str | None = None) -> Any:
        if not uscc:
            return JSONResponse({"error": "uscc is required"}, status_code=400)
        flags = [{k: v for k, v in f.items() if k != "received_at"} for f in reg.flags.values() if f["uscc"] == uscc]
        return {"flags": flags}

    @app.post("/_sim/seed")
    async def seed_enterprises(request: Request) -> Any:
        body = await request.json()
        for ent in body.get("enterprises", []):
            reg.enterprises[ent["uscc"]] = ent
            reg.absent.discard(ent["uscc"])
        reg.absent.update(body.get("absent", []))
        return {"enterprises": len(reg.enterprises), "absent": len(reg.absent)}

    @app.get("/_sim/flags")
    async def flags() -> list[dict[str, Any]]:
        return [{**f, "times_received": reg.received[f["flag_id"]]} for f in reg.flags.values()]

    layer = SimLayer(app, sim, lambda method, path: f"{method} {path}")
    layer.data = reg
    return layer
