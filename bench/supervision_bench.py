"""Deadline lights speed (issue 15): `deadlineLights` for a province against the KPI report of the same scope.

1. Generates N records over 2024 for one province (641 units: `gateway.units.sample.province_tree`, two
   stations per county), derives their KPI facts with the gateway's own functions
   (`gateway.reports.facts.fact_rows`), COPYs them into a migrated PostgreSQL schema and builds the
   rollups (`gateway.reports.rollups.rebuild`).
2. Times, warm (median of 5 after one run), on the same engine:
   - the KPI report of the province by city over the whole year (`build_report`, supervision counter
     included, as the API calls it): the reference;
   - `deadline_lights` of the province by city at the same `as_of` (what `deadlineLights` runs);
   - the same two for the largest city by station;
   - the first page (50) of `deadline_watch` for the province's red and yellow deadlines.
3. Checks that the lights' red total equals the report's overdue total (one deadline rule).

    .venv/bin/python bench/supervision_bench.py                      # 1,000,000 records (the goal's size)
    .venv/bin/python bench/supervision_bench.py --records 100000     # quicker

Ends with `goal lights: <ratio>x report (goal <= 1.0x report) PASS|FAIL`, the worse of two `as_of`: after
every event (all records settled: what "now" usually is) and mid-stream (a tenth of the records still
changing). Needs PostgreSQL at GATEWAY_BENCH_DATABASE_URL (default: the test server).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
from sqlalchemy import make_url, text  # noqa: E402

from connectors.simulators.data import generate_records  # noqa: E402
from gateway.core.auth import Principal  # noqa: E402
from gateway.core.db import make_engine, make_sessionmaker, transaction  # noqa: E402
from gateway.core.migrate import migrate  # noqa: E402
from gateway.core.state import set_state  # noqa: E402
from gateway.core.time import parse_instant, shanghai_date  # noqa: E402
from gateway.ingest.units_file import import_units  # noqa: E402
from gateway.reports import rollups  # noqa: E402
from gateway.reports.build import build_report  # noqa: E402
from gateway.reports.facts import CONFIG_KEY, NewRecord, fact_rows, kpi_config  # noqa: E402
from gateway.reports.models import RECORD_FACT_MODELS  # noqa: E402
from gateway.supervision.lights import deadline_lights, deadline_watch  # noqa: E402
from gateway.supervision.report import count_orders  # noqa: E402
from gateway.units.sample import province_tree, tree_ancestors, units_csv  # noqa: E402
from kpi.obligations import EventIn, RecordIn, derive  # noqa: E402

PG_URL = os.environ.get("GATEWAY_BENCH_DATABASE_URL",
                        os.environ.get("GATEWAY_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"))
CHUNK = 20_000
AS_OFS = {  # after every event of the data (its horizon is 2025-01-20), and mid-stream
    "settled": datetime.fromisoformat("2025-02-03T10:00:00+08:00"),
    "mid-stream": datetime.fromisoformat("2024-12-20T10:00:00+08:00"),
}
YEAR = (date(2024, 1, 1), date(2024, 12, 31))
CONFIG = kpi_config()
YELLOW_DAYS = 2
SUPERVISOR = Principal("bench", "510000", frozenset({"supervisor", "evaluator"}))


async def timed(fn: Callable[[], Awaitable[Any]], runs: int = 5) -> tuple[float, Any]:
    """Median seconds of `runs` warm runs (after one untimed run), and the last result."""
    result = await fn()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = await fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def new_record(raw: dict[str, Any], ancestors: dict[str, tuple[str | None, ...]]) -> NewRecord:
    """A generated record as the store would have written it."""
    received = parse_instant(raw["received_at"]).astimezone(UTC)
    events = sorted((EventIn(e["type"], parse_instant(e["at"]).astimezone(UTC), e["data"]) for e in raw["events"]),
                    key=lambda e: e.at)
    cents = raw["recovered_amount"]
    return NewRecord(raw["id"], raw["kind"], raw["channel"], raw["hotline"], received, shanghai_date(received),
                     raw["complainant"]["real_name"], int(round(float(cents) * 100)) if cents else None,
                     *ancestors[raw["handling_unit"]], events)


async def load(url: str, schema: str, records: int) -> tuple[str, int]:
    """The schema migrated, the province's units, `records` records' facts (derived by the gateway's own
    functions, COPYed) and the rollups rebuilt; returns the largest city and the obligation rows."""
    rows = province_tree("51", stations_per_county=2)
    ancestors = tree_ancestors(rows)
    handling = [code for code, _, level, _ in rows if level >= 4]
    cities = sorted(code for code, _, level, _ in rows if level == 3)
    city = max(cities, key=lambda c: sum(1 for h in handling if ancestors[h][2] == c))

    engine = make_engine(url)
    await migrate(engine)
    async with transaction(make_sessionmaker(engine)) as session:
        await import_units(session, units_csv(rows))
        await set_state(session, CONFIG_KEY, CONFIG.fingerprint)
    print(f"{len(rows)} units; loading the facts of {records} records received in 2024 …", flush=True)

    parsed = make_url(url)
    conn = await asyncpg.connect(host=parsed.host, port=parsed.port, user=parsed.username,
                                 password=parsed.password, database=parsed.database,
                                 server_settings={"search_path": schema})
    started = time.perf_counter()
    obligations = 0
    for i, start in enumerate(range(0, records, CHUNK)):
        raws = generate_records(min(CHUNK, records - start), handling, seed=i, id_prefix=f"S{i:04d}-", days=365)
        facts = []
        for raw in raws:
            rec = new_record(raw, ancestors)
            facts.append(fact_rows(rec, derive(RecordIn(rec.kind, rec.received_at, rec.real_name, rec.events),
                                               CONFIG.calendar, CONFIG.policies)))
        tables = ([f[0] for f in facts], [o for f in facts for o in f[1]], [c for f in facts for c in f[2]])
        obligations += len(tables[1])
        for model, batch in zip(RECORD_FACT_MODELS, tables, strict=True):
            cols = [c.name for c in model.__table__.columns]
            await conn.copy_records_to_table(model.__tablename__, columns=cols,
                                             records=[tuple(r[c] for c in cols) for r in batch])
    await conn.close()
    async with transaction(make_sessionmaker(engine)) as session:
        await rollups.rebuild(session)
    async with engine.begin() as c:
        await c.execute(text("ANALYZE"))
    await engine.dispose()
    print(f"  loaded in {time.perf_counter() - started:.0f}s (rollups included): {obligations} obligation rows",
          flush=True)
    return city, obligations


async def measure(url: str, city: str, as_of: datetime) -> float:
    engine = make_engine(url, pool_size=2)
    sm = make_sessionmaker(engine)

    def report(unit: str, level: int) -> Callable[[], Awaitable[Any]]:
        async def run() -> Any:
            async with sm() as session:
                return await build_report(session, unit=unit, level=level, date_from=YEAR[0], date_to=YEAR[1],
                                          as_of=as_of, config=CONFIG, orders=count_orders)
        return run

    def lights(unit: str, level: int) -> Callable[[], Awaitable[Any]]:
        async def run() -> Any:
            async with sm() as session:
                return await deadline_lights(session, SUPERVISOR, unit, level, as_of, CONFIG, YELLOW_DAYS)
        return run

    def watch(light: str) -> Callable[[], Awaitable[Any]]:
        async def run() -> Any:
            async with sm() as session:
                return await deadline_watch(session, SUPERVISOR, "510000", light, None, as_of, 50, None, CONFIG,
                                            YELLOW_DAYS)
        return run

    try:
        results: dict[str, float] = {}
        for label, unit, level in (("province by city", "510000", 3), (f"city {city} by station", city, 5)):
            report_s, doc = await timed(report(unit, level))
            lights_s, rows = await timed(lights(unit, level))
            total = rows[-1]
            print(f"  {label:28} report {report_s * 1000:8.1f} ms   lights {lights_s * 1000:8.1f} ms   "
                  f"ratio {lights_s / report_s:5.2f}   open: {total.red} red, {total.yellow} yellow, "
                  f"{total.green} green; report overdue {doc['total']['overdue']}", flush=True)
            if total.red != doc["total"]["overdue"]:
                raise SystemExit(f"lights disagree with the report: {total.red} red, "
                                 f"{doc['total']['overdue']} overdue")
            results[label] = lights_s / report_s
        for light in ("RED", "YELLOW"):
            page_s, page = await timed(watch(light))
            print(f"  deadlineWatch {light:6} first 50     {page_s * 1000:8.1f} ms   ({len(page.nodes)} nodes)",
                  flush=True)
        return results["province by city"]
    finally:
        await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=PG_URL)
    args = parser.parse_args()
    schema = f"supbench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(args.database_url)
    async with admin.begin() as conn:
        await conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{args.database_url}{'&' if '?' in args.database_url else '?'}search_path={schema}"
    try:
        city, _ = await load(url, schema, args.records)
        ratios = []
        for label, as_of in AS_OFS.items():
            print(f"warm medians of 5, as_of {as_of.isoformat()} ({label}), PostgreSQL:", flush=True)
            ratios.append(await measure(url, city, as_of))
        ratio = max(ratios)
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        await admin.dispose()
    print(f"goal lights: {ratio:.2f}x report (goal <= 1.0x report) {'PASS' if ratio <= 1.0 else 'FAIL'}")


if __name__ == "__main__":
    asyncio.run(main())
