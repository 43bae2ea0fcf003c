"""GraphQL gateway benchmark, one command, every ratio measured in this one run:

    .venv/bin/python bench/graphql_bench.py [--records 2000] [--seconds 8] [--concurrency 32]

1. fan-out: one complaint with its enterprise (credit), cases (enforcement) and incidents (emergency), each
   simulator answering after 50 ms: gateway p50 / the slowest upstream's p50 (each system called alone
   through its connector, in this run): goal R-e <= 1.12 (issue 13).
2. N+1: upstream requests per system for `complaints(first: 100) { enterprise cases incidents }`
   (goal: 1 each).
3. throughput: a store-only query of one complaint (20 fields) under load, against a hand-written FastAPI
   endpoint returning the same JSON from the same database (same token check, same jurisdiction, same
   masking), both served by uvicorn in one process of their own, in alternating rounds: rps ratio, goal R-d
   >= 0.75 (issue 13), and p99.

Simulators and the server run as separate processes (they do not share the load generator's GIL).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import Request
from fastapi.responses import Response

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectors.simulators.server import run_in_process  # noqa: E402

SECRET = "bench-secret-0123456789abcdef0123456789"
SIM_TOKEN = "bench-sim-token"

ONE = """query One($id: ID!) { complaint(id: $id) { id kind channel hotline urgency category receivedAt regionCode
  summary amountInvolved recoveredAmount updatedAt respondent { uscc name } complainant { name phone realName }
  handlingUnit { code name level } } }"""

FAN_OUT = """query Fan($id: ID!) { complaint(id: $id) { id enterprise { creditProfile { name riskLevel } }
  cases { caseNo status } incidents { incidentId status } } }"""

PAGE = """{ complaints(first: 100) { nodes { id enterprise { creditProfile { name } } cases { caseNo }
  incidents { incidentId } } } }"""


# ------------------------------------------------------------------------------------------- processes


def simulator(system: str) -> Any:
    return run_in_process(system, "--token", SIM_TOKEN, "--records", "0")


@contextmanager
def server(env: dict[str, str], port: int) -> Iterator[str]:
    """The gateway plus the hand-written endpoint, in one uvicorn process."""
    cmd = [sys.executable, "-m", "uvicorn", "bench.graphql_bench:bench_app", "--factory", "--port", str(port),
           "--log-level", "warning", "--no-access-log"]
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the gateway did not start")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


# ------------------------------------------------------------------------------------------- the app


def bench_app() -> Any:
    """`create_app` with one more route: the hand-written endpoint the gateway is measured against."""
    from sqlalchemy import select

    from gateway.api.app import create_app
    from gateway.complaints.models import Complainant, Complaint, record_ancestors
    from gateway.complaints.pii import mask_name, mask_phone
    from gateway.core.auth import AuthError, bearer_token, decode_token
    from gateway.core.money import cents_to_money
    from gateway.core.time import format_instant
    from gateway.units.models import OrgUnit

    app = create_app()
    query = (
        select(Complaint.__table__, Complainant.name.label("c_name"), Complainant.phone.label("c_phone"),
               OrgUnit.name.label("unit_name"), OrgUnit.level.label("unit_level"))
        .join(Complainant, Complainant.complaint_id == Complaint.id, isouter=True)
        .join(OrgUnit, OrgUnit.code == Complaint.handling_unit)
    )

    @app.get("/baseline/complaint/{complaint_id}")
    async def baseline(complaint_id: str, request: Request) -> Response:
        settings = request.app.state.settings
        try:
            principal = decode_token(settings.jwt_secret.get_secret_value(),
                                     bearer_token(request.headers.get("authorization")))
        except AuthError as exc:
            return Response(json.dumps({"errors": [{"message": str(exc)}]}), status_code=401)
        jurisdiction = await request.app.state.graphql.units.jurisdiction_of(principal.unit)  # the same cache
        async with request.app.state.engine.connect() as conn:
            row = (await conn.execute(query.where(Complaint.id == complaint_id))).first()
        c = row
        if c is None or jurisdiction is None or not jurisdiction.contains(record_ancestors(c)):
            body: Any = {"data": {"complaint": None}}
        else:
            pii = principal.has("pii")
            body = {"data": {"complaint": {
                "id": c.id, "kind": c.kind, "channel": c.channel, "hotline": c.hotline, "urgency": c.urgency,
                "category": c.category, "receivedAt": format_instant(c.received_at), "regionCode": c.region_code,
                "summary": c.summary, "amountInvolved": cents_to_money(c.amount_involved_cents),
                "recoveredAmount": cents_to_money(c.recovered_amount_cents), "updatedAt": format_instant(c.updated_at),
                "respondent": {"uscc": c.respondent_uscc, "name": c.respondent_name} if c.respondent_name else None,
                "complainant": {"name": row.c_name if pii else mask_name(row.c_name),
                                "phone": row.c_phone if pii else mask_phone(row.c_phone), "realName": c.real_name},
                "handlingUnit": {"code": c.handling_unit, "name": row.unit_name, "level": row.unit_level},
            }}}
        return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
                        media_type="application/json")

    return app


# ------------------------------------------------------------------------------------------- data


async def seed(db_url: str, records: int, sims: dict[str, str]) -> list[str]:
    from connectors.simulators.data import cases_from_records, generate_records, sample_units_csv
    from gateway.core.db import make_engine, make_sessionmaker, transaction
    from gateway.core.migrate import migrate
    from gateway.flags.models import IncidentLink
    from gateway.ingest.store import ingest_raw
    from gateway.ingest.units_file import import_units

    engine = make_engine(db_url)
    await migrate(engine)
    sm = make_sessionmaker(engine)
    recs = generate_records(records, seed=3)
    async with transaction(sm) as session:
        await import_units(session, sample_units_csv())
    for i in range(0, len(recs), 500):
        async with transaction(sm) as session:
            await ingest_raw(session, recs[i : i + 500])
    ids = [r["id"] for r in recs]
    now = datetime.now(UTC)
    async with transaction(sm) as session:
        session.add_all(IncidentLink(complaint_id=rid, incident_id=f"INC-{rid}", created_at=now) for rid in ids)
    await engine.dispose()
    headers = {"Authorization": f"Bearer {SIM_TOKEN}"}
    cases = cases_from_records(recs) + [
        {"case_no": f"BC-{rid}", "lead_id": None, "complaint_ids": [rid], "respondent_uscc": None,
         "unit_code": r["handling_unit"], "status": "INVESTIGATING", "violation": None, "penalty_amount": None,
         "filed_at": "2024-03-20T10:00:00+08:00", "closed_at": None}
        for rid, r in zip(ids, recs, strict=True)
    ]
    incidents = [{"incident_id": f"INC-{rid}", "complaint_ids": [rid], "status": "DISPATCHED",
                  "commanding_unit": None, "updated_at": "2024-03-21T10:00:00+08:00"} for rid in ids]
    async with httpx.AsyncClient(headers=headers, timeout=60) as http:
        (await http.post(f"{sims['enforcement']}/_sim/seed", json={"cases": cases})).raise_for_status()
        (await http.post(f"{sims['emergency']}/_sim/seed", json={"incidents": incidents})).raise_for_status()
    return ids


# ------------------------------------------------------------------------------------------- load


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, await reader.readexactly(length)


def http_request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: bench", f"Content-Length: {len(body)}",
             *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def load(url: str, make: Any, seconds: float, concurrency: int) -> tuple[float, list[float], int]:
    """Closed-loop load from `concurrency` keep-alive connections for `seconds`: (rps, latencies, errors).
    A minimal HTTP/1.1 client, so that the load generator costs far less CPU than the servers measured."""
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    errors = 0
    stop = time.monotonic() + seconds

    async def client(n: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        i = n
        try:
            while time.monotonic() < stop:
                t = time.perf_counter()
                status, body = await _exchange(reader, writer, make(i))
                latencies.append(time.perf_counter() - t)
                if status != 200 or b'"errors"' in body:
                    errors += 1
                i += concurrency
        finally:
            writer.close()

    started = time.monotonic()
    await asyncio.gather(*(client(n) for n in range(concurrency)))
    return len(latencies) / (time.monotonic() - started), latencies, errors


async def direct_fan_out(sims: dict[str, str], ids: list[str]) -> float:
    """p50 of the three upstream calls made straight from the connectors: the floor the gateway stands on."""
    from connectors import ConnectorConfig, CreditConnector, EmergencyConnector, EnforcementConnector

    credit = CreditConnector(ConnectorConfig(url=sims["credit"], token=SIM_TOKEN))
    enforcement = EnforcementConnector(ConnectorConfig(url=sims["enforcement"], token=SIM_TOKEN))
    emergency = EmergencyConnector(ConnectorConfig(url=sims["emergency"], token=SIM_TOKEN))
    times = []
    for i in range(60):
        t = time.perf_counter()
        await asyncio.gather(credit.enterprises(["91110000802100433B"]),
                             enforcement.cases_by_complaint_ids([ids[i]]),
                             emergency.incidents_by_ids([f"INC-{ids[i]}"]))
        if i >= 10:
            times.append(time.perf_counter() - t)
    for c in (credit, enforcement, emergency):
        await c.aclose()
    return pct(times, 0.5)


async def slowest_upstream(sims: dict[str, str], ids: list[str]) -> tuple[float, dict[str, float]]:
    """Each upstream call alone, straight from its connector (p50 of 50 calls): the slowest system's p50, the
    floor a federated query can reach, and each system's."""
    from connectors import ConnectorConfig, CreditConnector, EmergencyConnector, EnforcementConnector

    credit = CreditConnector(ConnectorConfig(url=sims["credit"], token=SIM_TOKEN))
    enforcement = EnforcementConnector(ConnectorConfig(url=sims["enforcement"], token=SIM_TOKEN))
    emergency = EmergencyConnector(ConnectorConfig(url=sims["emergency"], token=SIM_TOKEN))
    calls = {
        "credit": lambda i: credit.enterprises(["91110000802100433B"]),
        "enforcement": lambda i: enforcement.cases_by_complaint_ids([ids[i]]),
        "emergency": lambda i: emergency.incidents_by_ids([f"INC-{ids[i]}"]),
    }
    each = {}
    for system, call in calls.items():
        times = []
        for i in range(60):
            t = time.perf_counter()
            await call(i)
            if i >= 10:
                times.append(time.perf_counter() - t)
        each[system] = pct(times, 0.5)
    for c in (credit, enforcement, emergency):
        await c.aclose()
    return max(each.values()), each


def verdict(name: str, value: float, op: str, bar: float) -> str:
    ok = value <= bar if op == "<=" else value >= bar
    return f"goal {name}: {value:.2f} (goal {op} {bar:g}) {'PASS' if ok else 'FAIL'}"


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=2000)
    p.add_argument("--seconds", type=float, default=8.0, help="per throughput phase")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--database-url", help="default: a fresh SQLite file")
    args = p.parse_args()

    from gateway.core.auth import mint_token

    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        sims = {s: stack.enter_context(simulator(s)) for s in ("credit", "enforcement", "emergency")}
        db_url = args.database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        ids = await seed(db_url, args.records, sims)
        env = {"GATEWAY_DATABASE_URL": db_url, "GATEWAY_JWT_SECRET": SECRET, "GATEWAY_DISPATCHER": "false",
               "GATEWAY_AUTO_MIGRATE": "false", "GATEWAY_COMPLAINTS_URL": ""}
        for system, url in sims.items():
            env[f"GATEWAY_{system.upper()}_URL"] = url
            env[f"GATEWAY_{system.upper()}_TOKEN"] = SIM_TOKEN
        url = stack.enter_context(server(env, args.port))
        token = mint_token(SECRET, "bench", "100000", ["reader"], 3600)
        auth = {"Authorization": f"Bearer {token}"}
        gql_headers = {**auth, "Accept": "application/graphql-response+json", "Content-Type": "application/json"}
        sim_http = httpx.Client(timeout=10)

        def gql(query: str, variables: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
            body = json.dumps({"query": query, "variables": variables})
            return "POST", "/graphql", {"content": body, "headers": gql_headers}

        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            # ------------------------------------------------------------------ 1. fan-out
            for sim in sims.values():
                sim_http.post(f"{sim}/_sim/faults", json={"latency_ms": 50}).raise_for_status()
            fan: list[float] = []
            for i in range(60):
                method, path, kw = gql(FAN_OUT, {"id": ids[i % len(ids)]})
                t = time.perf_counter()
                resp = await http.request(method, path, **kw)
                if i >= 10:  # the first calls open connections
                    fan.append(time.perf_counter() - t)
                assert resp.status_code == 200 and "errors" not in resp.json(), resp.text
            floor = await direct_fan_out(sims, ids)
            slowest, each = await slowest_upstream(sims, ids)
            for sim in sims.values():
                sim_http.post(f"{sim}/_sim/faults", json={}).raise_for_status()
            p50 = pct(fan, 0.5)
            fan_ratio = p50 / slowest
            print(f"1. fan-out   p50 {p50 * 1000:.1f} ms over 3 systems at 50 ms each; each system alone through "
                  f"its connector: " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in each.items())
                  + f"; the three at once, from the connectors: p50 {floor * 1000:.1f} ms; "
                  f"gateway / slowest upstream {fan_ratio:.3f}")

            # ------------------------------------------------------------------ 2. N+1
            for sim in sims.values():
                sim_http.post(f"{sim}/_sim/reset").raise_for_status()
            resp = await http.request(*gql(PAGE, {})[:2], **gql(PAGE, {})[2])
            assert resp.status_code == 200 and "errors" not in resp.json(), resp.text[:500]
            assert len(resp.json()["data"]["complaints"]["nodes"]) == 100
            counts = {s: sim_http.get(f"{u}/_sim/stats").json()["total_requests"] for s, u in sims.items()}
            print("2. N+1       complaints(first: 100) { enterprise cases incidents }: upstream requests "
                  + ", ".join(f"{s} {n}" for s, n in counts.items()) + " (goal: 1 each)")

        # ---------------------------------------------------------------------- 3. throughput
        gql_requests = [
            http_request("POST", "/graphql", gql_headers, json.dumps({"query": ONE, "variables": {"id": rid}}).encode())
            for rid in ids
        ]
        rest_requests = [http_request("GET", f"/baseline/complaint/{rid}", auth) for rid in ids]

        def one_gql(i: int) -> bytes:
            return gql_requests[i % len(ids)]

        def one_rest(i: int) -> bytes:
            return rest_requests[i % len(ids)]

        async with httpx.AsyncClient(base_url=url, headers=gql_headers) as http:  # same answer, checked
            a = (await http.post("/graphql", content=json.dumps({"query": ONE, "variables": {"id": ids[7]}}))).json()
            b = (await http.get(f"/baseline/complaint/{ids[7]}")).json()
            assert a == b, (a, b)
        await load(url, one_gql, 2, args.concurrency)  # warm-up
        await load(url, one_rest, 2, args.concurrency)
        # Alternating rounds, so that a neighbour's load on this shared machine falls on both alike.
        g_rates, r_rates, g_lat, r_lat, g_err, r_err = [], [], [], [], 0, 0
        for _ in range(4):
            rps, lat, err = await load(url, one_gql, args.seconds / 4, args.concurrency)
            g_rates.append(rps)
            g_lat += lat
            g_err += err
            rps, lat, err = await load(url, one_rest, args.seconds / 4, args.concurrency)
            r_rates.append(rps)
            r_lat += lat
            r_err += err
        g_rps, r_rps = statistics.mean(g_rates), statistics.mean(r_rates)
        print(f"3. throughput  gateway {g_rps:.0f} rps (p50 {pct(g_lat, .5) * 1000:.1f} ms, p99 "
              f"{pct(g_lat, .99) * 1000:.1f} ms, errors {g_err}) vs hand-written {r_rps:.0f} rps (p50 "
              f"{pct(r_lat, .5) * 1000:.1f} ms, p99 {pct(r_lat, .99) * 1000:.1f} ms, errors {r_err}): "
              f"ratio {g_rps / r_rps:.2f}")
    print(verdict("R-d", g_rps / r_rps, ">=", 0.75))
    print(verdict("R-e", fan_ratio, "<=", 1.12))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
