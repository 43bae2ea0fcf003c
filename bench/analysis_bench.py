"""Analysis and live-feed speed (issue 15): `trends` against the KPI report, and alert latency across replicas.

1. Loads N records (default 1,000,000) over 2024 into a province's five-level tree on PostgreSQL: the
   `complaints` rows `trends` reads and the KPI facts the report reads, both by COPY (the records come from
   the simulators' generator; the facts from `kpi.obligations.derive`, as in kpi_bench.py).
2. Times, warm (median of 5 after one cold run, on one engine), `trends` of the province by subordinate
   unit over 2024 (环比 against 2023) and the KPI report of the same scope (the province by city, 2024) —
   the reference measured in the same run — plus `series` and `trends` by enterprise for information.
3. Starts two `gateway serve` replicas on that database, opens --subscribers WebSocket subscriptions
   (graphql-transport-ws) split between them, commits --alerts alerts one by one from this process with
   `publish_alert`, and measures for every delivery the time from just before COMMIT to the `next` message
   arriving: p50, p99, max, and how many deliveries arrived.

    .venv/bin/python bench/analysis_bench.py                      # 1M records, 200 subscribers
    .venv/bin/python bench/analysis_bench.py --records 100000     # a quicker look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import httpx  # noqa: E402
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402

from bench.kpi_bench import AS_OF, CONFIG, columns, fact_rows, prepare  # noqa: E402
from connectors.simulators.data import generate_records  # noqa: E402
from gateway.complaints.models import Complaint  # noqa: E402
from gateway.core.auth import mint_token  # noqa: E402
from gateway.core.db import make_engine, make_sessionmaker  # noqa: E402
from gateway.core.feed import Alert, publish_alert  # noqa: E402
from gateway.core.time import parse_instant, shanghai_date  # noqa: E402
from gateway.reports.build import build_report  # noqa: E402
from gateway.reports.models import FACT_MODELS  # noqa: E402
from gateway.supervision import analysis  # noqa: E402
from gateway.units.sample import province_tree, tree_ancestors, units_csv  # noqa: E402

PG_URL = os.environ.get("GATEWAY_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
SECRET = "analysis-bench-secret-long-enough-for-hs256"
CHUNK = 20_000
YEAR = (date(2024, 1, 1), date(2024, 12, 31))
ALERTS = 'subscription { alerts(unit: "510000") { kind complaintIds detail } }'


def complaint_rows(raws: list[dict[str, Any]], ancestors: dict[str, tuple[str | None, ...]]) -> list[tuple[Any, ...]]:
    """The `complaints` rows of a chunk, in the table's column order (COPY)."""
    cols = columns(Complaint)
    out = []
    for raw in raws:
        received = parse_instant(raw["received_at"]).astimezone(UTC)
        anc = ancestors[raw["handling_unit"]]
        respondent = raw.get("respondent") or {}
        row = {
            "id": raw["id"], "kind": raw["kind"], "channel": raw["channel"], "hotline": raw["hotline"],
            "urgency": raw["urgency"], "category": raw["category"], "received_at": received,
            "received_day": shanghai_date(received), "handling_unit": raw["handling_unit"],
            **{f"u{n + 1}": anc[n] for n in range(5)}, "region_code": raw.get("region_code"),
            "respondent_uscc": respondent.get("uscc"), "respondent_name": respondent.get("name"),
            "real_name": bool(raw["complainant"]["real_name"]), "summary": raw["summary"],
            "amount_involved_cents": None, "recovered_amount_cents": None, "content_hash": "0" * 64,
            "created_at": received, "updated_at": received,
        }
        out.append(tuple(row.get(c) for c in cols))
    return out


async def load(pg_url: str, schema: str, n: int, handling: list[str],
               ancestors: dict[str, tuple[str | None, ...]]) -> None:
    conn = await asyncpg.connect(host="127.0.0.1", user="postgres", database="test",
                                 server_settings={"search_path": schema})
    started = time.perf_counter()
    try:
        for i, start in enumerate(range(0, n, CHUNK)):
            raws = generate_records(min(CHUNK, n - start), handling, seed=i, id_prefix=f"A{i:04d}-",
                                    start=YEAR[0], days=366)
            await conn.copy_records_to_table("complaints", records=complaint_rows(raws, ancestors),
                                             columns=columns(Complaint))
            recs, obls, cbs, _ = fact_rows(raws, ancestors)
            for model, rows in zip(FACT_MODELS, (recs, obls, cbs), strict=True):
                if rows:
                    cols = columns(model)
                    await conn.copy_records_to_table(model.__tablename__, records=[tuple(r[c] for c in cols)
                                                                                   for r in rows], columns=cols)
            if (i + 1) % 10 == 0:
                print(f"  loaded {start + CHUNK} records ({time.perf_counter() - started:.0f} s)", flush=True)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def warm(fn: Callable[[], Awaitable[Any]], runs: int = 5) -> tuple[float, float, Any]:
    """(cold seconds, warm median seconds, last result)."""
    t0 = time.perf_counter()
    result = await fn()
    cold = time.perf_counter() - t0
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = await fn()
        times.append(time.perf_counter() - t0)
    return cold, statistics.median(times), result


async def time_queries(pg_url: str) -> tuple[float, float]:
    engine = make_engine(pg_url)
    sm = make_sessionmaker(engine)

    async def kpi() -> Any:
        async with sm() as session:
            return await build_report(session, unit="510000", level=3, date_from=YEAR[0], date_to=YEAR[1],
                                      as_of=AS_OF, config=CONFIG)

    def trend(by: str) -> Callable[[], Awaitable[Any]]:
        async def run() -> Any:
            async with sm() as session:
                return await analysis.trends(session, "510000", YEAR[0], YEAR[1], by)
        return run

    async def series() -> Any:
        async with sm() as session:
            return await analysis.series(session, "510000", YEAR[0], YEAR[1], "WEEK")

    try:
        k_cold, k_warm, doc = await measured("KPI report, province by city, 2024", kpi)
        t_cold, t_warm, report = await measured("trends by SUBORDINATE_UNIT, 2024 vs 2023",
                                                     trend("SUBORDINATE_UNIT"))
        assert report.total.count == doc["total"]["received"], (report.total.count, doc["total"]["received"])
        await measured("trends by ENTERPRISE, 2024 vs 2023", trend("ENTERPRISE"))
        await measured("series by WEEK, 2024", series)
    finally:
        await engine.dispose()
    return t_warm, k_warm


async def measured(label: str, fn: Callable[[], Awaitable[Any]]) -> tuple[float, float, Any]:
    cold, median, result = await warm(fn)
    print(f"  {label:44} cold {cold * 1000:8.1f} ms  warm {median * 1000:8.1f} ms", flush=True)
    return cold, median, result


# ------------------------------------------------------------------------------------------- live feed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_replicas(pg_url: str, n: int = 2) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    ports = [free_port() for _ in range(n)]
    env = {**os.environ, "GATEWAY_DATABASE_URL": pg_url, "GATEWAY_JWT_SECRET": SECRET,
           "GATEWAY_DISPATCHER": "off", "GATEWAY_LOG_LEVEL": "WARNING"}
    procs = [subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--port", str(p)], env=env, cwd=ROOT)
             for p in ports]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    deadline = time.monotonic() + 60
    for proc, url in zip(procs, urls, strict=True):
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"replica {url} did not start")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
    return procs, urls


async def subscriber(url: str, bearer: str) -> ClientConnection:
    ws = await connect(url, subprotocols=["graphql-transport-ws"], max_queue=None)  # type: ignore[list-item]
    await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {bearer}"}}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": ALERTS}}))
    await ws.send(json.dumps({"type": "ping"}))
    assert json.loads(await ws.recv())["type"] == "pong"  # the subscription is in place
    return ws


async def feed_latency(pg_url: str, subscribers: int, alerts: int) -> list[float]:
    procs, urls = start_replicas(pg_url)
    bearer = mint_token(SECRET, "bench", "510000", ["supervisor"], 3600)
    engine = make_engine(pg_url)
    sm = make_sessionmaker(engine)
    committed: dict[int, float] = {}
    latencies: list[float] = []
    try:
        sockets = await asyncio.gather(*(subscriber(urls[i % len(urls)].replace("http", "ws") + "/graphql", bearer)
                                         for i in range(subscribers)))

        async def listen(ws: ClientConnection) -> None:
            for _ in range(alerts):
                message = json.loads(await ws.recv())
                arrived = time.perf_counter()
                seq = message["payload"]["data"]["alerts"]["detail"]["seq"]
                latencies.append(arrived - committed[seq])

        listeners = [asyncio.create_task(listen(ws)) for ws in sockets]
        for seq in range(alerts):
            async with sm() as session:
                await session.begin()
                await publish_alert(session, Alert("FLAG_RAISED", "510100", [f"BENCH-{seq}"], {"seq": seq}))
                committed[seq] = time.perf_counter()  # just before COMMIT: latency is never understated
                await session.commit()
            await asyncio.sleep(0.1)
        await asyncio.wait(listeners, timeout=30)
        for task in listeners:
            task.cancel()
        for ws in sockets:
            await ws.close()
    finally:
        await engine.dispose()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(15)
    return latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--alerts", type=int, default=50)
    args = parser.parse_args()

    rows = province_tree("51", stations_per_county=2)
    ancestors = tree_ancestors(rows)
    handling = [code for code, _, level, _ in rows if level >= 4]
    schema = f"analysisbench_{uuid.uuid4().hex[:8]}"
    pg_url = f"{PG_URL}?search_path={schema}"
    print(f"{len(rows)} units; {args.records} records over 2024 on PostgreSQL (schema {schema})", flush=True)
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc", f"CREATE SCHEMA {schema}"],
                   check=True)
    try:
        await prepare(pg_url, units_csv(rows))
        started = time.perf_counter()
        await load(pg_url, schema, args.records, handling, ancestors)
        print(f"loaded in {time.perf_counter() - started:.0f} s", flush=True)
        print("queries (warm: median of 5 after a cold run):", flush=True)
        trends_s, kpi_s = await time_queries(pg_url)
        print(f"live feed: {args.subscribers} subscribers over 2 replicas, {args.alerts} alerts committed one by one:",
              flush=True)
        latencies = await feed_latency(pg_url, args.subscribers, args.alerts)
        expected = args.subscribers * args.alerts
        p50, p99 = pct(latencies, 0.5), pct(latencies, 0.99)
        print(f"  delivered {len(latencies)} of {expected}; commit to delivery p50 {p50 * 1000:.1f} ms, "
              f"p99 {p99 * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms", flush=True)
    finally:
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc",
                        f"DROP SCHEMA {schema} CASCADE"], check=True, capture_output=True)
    ok = trends_s <= kpi_s
    print(f"goal trends: {trends_s * 1000:.0f} ms (goal <= {kpi_s * 1000:.0f} ms, the KPI report of the same scope) "
          f"{'PASS' if ok else 'FAIL'}")
    ok = len(latencies) == expected and p99 <= 2.0
    print(f"goal alert-p99: {p99:.3f} s (goal <= 2 s, every delivery arriving) {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    asyncio.run(main())
