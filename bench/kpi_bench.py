"""KPI report speed (issue 5): N records over a province (cities, counties, stations) over one year.

1. Generates the records in chunks (the simulators' realistic lifecycles), derives their KPI facts with
   `kpi.obligations.derive` (pure cost per record), and bulk-loads the facts into PostgreSQL and SQLite
   (migrated schemas, the province's unit tree) and into Parquet files.
2. Times a province-by-city quarterly report and a city-by-station yearly report with
   `gateway.reports.build.build_report`, cold (first run on a fresh engine) and warm (median of 5), with the
   peak of Python memory allocated during the report (tracemalloc) and the process's peak RSS.
3. Times DuckDB running the same three aggregates over the Parquet export (cold: new connection; warm).
4. Times facts derivation during import: `ingest_raw` of --import-records records with and without the
   KPI hook, and `rebuild_all` over them (load events, derive, delete and insert facts), per record.

    .venv/bin/python bench/kpi_bench.py --records 1000000          # the full size
    .venv/bin/python bench/kpi_bench.py --records 200000 --backends sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from connectors.simulators.data import generate_records  # noqa: E402
from gateway.core.db import make_engine, make_sessionmaker, transaction  # noqa: E402
from gateway.core.migrate import migrate  # noqa: E402
from gateway.core.state import set_state  # noqa: E402
from gateway.core.time import parse_instant  # noqa: E402
from gateway.ingest.units_file import import_units  # noqa: E402
from gateway.reports.build import build_report  # noqa: E402
from gateway.reports.facts import CONFIG_KEY, kpi_config, rebuild_all  # noqa: E402
from gateway.reports.models import FACT_MODELS  # noqa: E402
from gateway.units.sample import province_tree, units_csv  # noqa: E402
from kpi.obligations import EventIn, RecordIn, derive, local_day  # noqa: E402

PG_URL = os.environ.get("GATEWAY_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
CHUNK = 20_000
AS_OF = datetime.fromisoformat("2025-01-20T00:00:00+08:00")
CONFIG = kpi_config()


def fact_rows(raws: list[dict[str, Any]], ancestors: dict[str, tuple[str | None, ...]]
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], float]:
    """The three tables' rows for a chunk of records, and the seconds spent in `derive`."""
    recs, obls, cbs = [], [], []
    spent = 0.0
    for raw in raws:
        received = parse_instant(raw["received_at"]).astimezone(UTC)
        events = sorted(
            (EventIn(e["type"], parse_instant(e["at"]).astimezone(UTC), e["data"]) for e in raw["events"]),
            key=lambda e: e.at,
        )
        started = time.perf_counter()
        facts = derive(RecordIn(raw["kind"], received, raw["complainant"]["real_name"], events),
                       CONFIG.calendar, CONFIG.policies)
        spent += time.perf_counter() - started
        anc = ancestors[raw["handling_unit"]]
        group = {"complaint_id": raw["id"], **{f"u{n + 1}": anc[n] for n in range(5)},
                 "received_day": local_day(received), "received_at": received}
        cents = raw["recovered_amount"]
        recs.append(group | {
            "kind": raw["kind"], "channel": raw["channel"], "hotline": raw["hotline"],
            "recovered_cents": int(round(float(cents) * 100)) if cents else 0,
            "reply_owed_at": facts.reply_owed_at, "replied_at": facts.replied_at,
            "concluded_at": facts.concluded_at, "first_callback_at": facts.first_callback_at,
            "mediation_outcome_at": facts.mediation_outcome_at, "mediation_succeeded": facts.mediation_succeeded,
            "decided_at": facts.decided_at, "case_filed": facts.case_filed,
        })
        obls += [group | {"obligation": s.obligation, "step": s.step, "policy": s.policy,
                          "valid_from": s.valid_from, "valid_to": s.valid_to, "due_day": s.due_day,
                          "fulfilled_at": s.fulfilled_at, "on_time": s.on_time} for s in facts.obligations]
        cbs += [group | {"step": c.step, "valid_from": c.valid_from, "valid_to": c.valid_to,
                         "satisfaction": c.satisfaction} for c in facts.callbacks]
    return recs, obls, cbs, spent


def columns(model: Any) -> list[str]:
    return [c.name for c in model.__table__.columns]


def sqlite_value(v: Any) -> Any:
    """As SQLAlchemy stores it on SQLite: naive UTC text with microseconds, ISO dates, 0/1."""
    if isinstance(v, datetime):
        return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, bool):
        return int(v)
    return v


class Loader:
    """Bulk loaders for PostgreSQL (COPY), SQLite (executemany) and Parquet (pyarrow writers)."""

    def __init__(self, pg_conn: Any, sqlite_path: Path | None, parquet_dir: Path) -> None:
        self.pg = pg_conn
        self.sqlite = sqlite3.connect(sqlite_path) if sqlite_path else None
        self.parquet_dir = parquet_dir
        self.writers: dict[str, pq.ParquetWriter] = {}

    async def load(self, tables: list[tuple[Any, list[dict[str, Any]]]]) -> None:
        for model, rows in tables:
            cols = columns(model)
            name = model.__tablename__
            if self.pg is not None and rows:
                await self.pg.copy_records_to_table(name, records=[tuple(r[c] for c in cols) for r in rows],
                                                    columns=cols)
            if self.sqlite is not None and rows:
                self.sqlite.executemany(
                    f"INSERT INTO {name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                    [tuple(sqlite_value(r[c]) for c in cols) for r in rows],
                )
            if rows:
                table = pa.Table.from_pylist([{c: r[c] for c in cols} for r in rows], schema=arrow_schema(model))
                if name not in self.writers:
                    self.writers[name] = pq.ParquetWriter(self.parquet_dir / f"{name}.parquet", table.schema)
                self.writers[name].write_table(table)

    def close(self) -> None:
        if self.sqlite is not None:
            self.sqlite.commit()
            self.sqlite.execute("ANALYZE")
            self.sqlite.close()
        for w in self.writers.values():
            w.close()


def arrow_schema(model: Any) -> pa.Schema:
    from sqlalchemy import BigInteger, Boolean, Date, SmallInteger

    fields = []
    for c in model.__table__.columns:
        t = c.type
        if isinstance(t, Boolean):
            at: pa.DataType = pa.bool_()
        elif isinstance(t, BigInteger | SmallInteger):
            at = pa.int64()
        elif isinstance(t, Date):
            at = pa.date32()
        elif "DateTime" in type(t).__name__ or "UTCDateTime" in type(t).__name__:
            at = pa.timestamp("us", tz="UTC")
        else:
            at = pa.string()
        fields.append(pa.field(c.name, at))
    return pa.schema(fields)


DUCK_SQL = {
    "records": """
        SELECT {row} AS unit, count(*),
          {kinds}, {channels}, {hotlines},
          sum(CASE WHEN reply_owed_at <= $as_of THEN 1 ELSE 0 END),
          sum(CASE WHEN replied_at <= $as_of THEN 1 ELSE 0 END),
          sum(CASE WHEN concluded_at <= $as_of THEN 1 ELSE 0 END),
          sum(CASE WHEN concluded_at <= $as_of AND first_callback_at <= $as_of THEN 1 ELSE 0 END),
          sum(CASE WHEN mediation_outcome_at <= $as_of THEN 1 ELSE 0 END),
          sum(CASE WHEN mediation_outcome_at <= $as_of AND mediation_succeeded THEN 1 ELSE 0 END),
          sum(CASE WHEN decided_at <= $as_of THEN 1 ELSE 0 END),
          sum(CASE WHEN decided_at <= $as_of AND case_filed THEN 1 ELSE 0 END), sum(recovered_cents)
        FROM '{dir}/kpi_record_facts.parquet'
        WHERE {own} = $unit AND received_day BETWEEN $from AND $to AND received_at <= $as_of GROUP BY 1""",
    "obligations": """
        SELECT {row}, obligation, policy,
          sum(CASE WHEN fulfilled_at <= $as_of AND on_time THEN 1 ELSE 0 END),
          sum(CASE WHEN fulfilled_at <= $as_of AND NOT on_time THEN 1 ELSE 0 END),
          sum(CASE WHEN (fulfilled_at IS NULL OR fulfilled_at > $as_of) AND due_day < $day THEN 1 ELSE 0 END),
          max(due_day)
        FROM '{dir}/kpi_obligation_facts.parquet'
        WHERE {own} = $unit AND received_day BETWEEN $from AND $to AND received_at <= $as_of
          AND valid_from <= $as_of AND (valid_to IS NULL OR valid_to > $as_of) GROUP BY 1, 2, 3""",
    "callbacks": """
        SELECT {row}, sum(CASE WHEN satisfaction <> 'UNREACHABLE' THEN 1 ELSE 0 END),
          sum(CASE WHEN satisfaction IN ('SATISFIED', 'BASICALLY_SATISFIED') THEN 1 ELSE 0 END)
        FROM '{dir}/kpi_callback_facts.parquet'
        WHERE {own} = $unit AND received_day BETWEEN $from AND $to AND received_at <= $as_of
          AND valid_from <= $as_of AND (valid_to IS NULL OR valid_to > $as_of) GROUP BY 1""",
}


def duck_report(con: Any, parquet: Path, unit: str, own: int, level: int, d_from: date, d_to: date) -> int:
    from kpi.metrics import CHANNELS, HOTLINES, KINDS

    def counts(col: str, values: tuple[str, ...]) -> str:
        return ", ".join(f"sum(CASE WHEN {col} = '{v}' THEN 1 ELSE 0 END)" for v in values)

    params = {"unit": unit, "from": d_from, "to": d_to, "as_of": AS_OF, "day": local_day(AS_OF)}
    total = 0
    for name, sql in DUCK_SQL.items():
        text = sql.format(row=f"u{level}", own=f"u{own}", dir=parquet, kinds=counts("kind", KINDS),
                          channels=counts("channel", CHANNELS), hotlines=counts("hotline", HOTLINES))
        used = {k: v for k, v in params.items() if f"${k}" in text}
        rows = con.execute(text, used).fetchall()
        if name == "records":
            total = sum(r[1] for r in rows)
    return total


async def timed(fn: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await fn()
    return time.perf_counter() - started, result


REPORTS = [  # (label, unit, level, from, to); the city is filled in at run time
    ("province by city, Q2", "510000", 3, date(2024, 4, 1), date(2024, 6, 30)),
    ("city by station, year", "CITY", 5, date(2024, 1, 1), date(2024, 12, 31)),
]


async def time_reports(url: str, city: str, label: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, unit, level, d_from, d_to in REPORTS:
        unit = city if unit == "CITY" else unit
        engine = make_engine(url)
        sm = make_sessionmaker(engine)

        async def run(unit: str = unit, level: int = level, d_from: date = d_from, d_to: date = d_to,
                      sm: Any = sm) -> Any:
            async with sm() as session:
                return await build_report(session, unit=unit, level=level, date_from=d_from, date_to=d_to,
                                          as_of=AS_OF, config=CONFIG)

        tracemalloc.start()
        cold, doc = await timed(run)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        warm = statistics.median([(await timed(run))[0] for _ in range(5)])
        await engine.dispose()
        out[name] = (cold, warm, peak / 2**20, doc["total"]["received"], len(doc["rows"]))
        print(f"  {label:10} {name:24} cold {cold * 1000:8.1f} ms  warm {warm * 1000:8.1f} ms  "
              f"report's Python allocations peak {peak / 2**20:6.1f} MiB  "
              f"({doc['total']['received']} records, {len(doc['rows'])} rows)", flush=True)
    return out


async def import_cost(url: str, n: int, handling: list[str]) -> None:
    """ingest_raw with and without the KPI hook, then rebuild_all, per record."""
    import gateway.reports.facts as kpi_store
    from gateway.ingest.store import ingest_raw

    raws = generate_records(n, handling, seed=99, id_prefix="I", days=365)
    engine = make_engine(url)
    sm = make_sessionmaker(engine)
    real = kpi_store.derive_facts

    async def noop(*_: Any, **__: Any) -> None:
        return None

    results = {}
    for label, prefix, hook in (("without KPI facts", "a", noop), ("with KPI facts", "b", real)):
        kpi_store.derive_facts = hook  # type: ignore[assignment]
        batch = [dict(r, id=f"{prefix}{r['id']}", events=[dict(e, id=f"{prefix}{e['id']}") for e in r["events"]])
                 for r in raws]
        started = time.perf_counter()
        for i in range(0, n, 1000):
            async with transaction(sm) as session:
                await ingest_raw(session, batch[i:i + 1000])
        results[label] = time.perf_counter() - started
    kpi_store.derive_facts = real  # type: ignore[assignment]
    started = time.perf_counter()
    async with transaction(sm) as session:
        rebuilt = await rebuild_all(session, CONFIG)
    rebuild = time.perf_counter() - started
    await engine.dispose()
    a, b = results["without KPI facts"], results["with KPI facts"]
    print(f"  import {n} records: {n / a:8.0f} rec/s without the KPI hook, {n / b:8.0f} rec/s with it "
          f"(+{(b - a) / n * 1e6:.0f} µs per record); rebuild_all of {rebuilt} records "
          f"{rebuild / rebuilt * 1e6:.0f} µs per record", flush=True)


async def prepare(url: str, units_text: str) -> None:
    engine = make_engine(url)
    await migrate(engine)
    sm = make_sessionmaker(engine)
    async with transaction(sm) as session:
        await import_units(session, units_text)
        await set_state(session, CONFIG_KEY, CONFIG.fingerprint)
    await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--import-records", type=int, default=20_000)
    args = parser.parse_args()
    backends = args.backends.split(",")

    rows = province_tree("51", stations_per_county=2)
    units_text = units_csv(rows)
    parents = {code: parent for code, _, _, parent in rows}
    levels = {code: level for code, _, level, _ in rows}
    ancestors: dict[str, tuple[str | None, ...]] = {}
    for code in parents:
        anc: list[str | None] = [None] * 5
        cur: str | None = code
        while cur:
            anc[levels[cur] - 1] = cur
            cur = parents[cur] or None
        ancestors[code] = tuple(anc)
    handling = [code for code, _, level, _ in rows if level >= 4]
    cities = sorted(code for code, _, level, _ in rows if level == 3)
    city = max(cities, key=lambda c: sum(1 for h in handling if ancestors[h][2] == c))
    print(f"{len(rows)} units ({len(cities)} cities, {len(handling)} counties and stations); "
          f"{args.records} records over 2024; city for the station report: {city}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        schema = f"kpibench_{uuid.uuid4().hex[:8]}"
        pg_url = f"{PG_URL}?search_path={schema}"
        sqlite_path = tmpdir / "kpi.db"
        sqlite_url = f"sqlite+aiosqlite:///{sqlite_path}"
        pg_conn = None
        if "postgresql" in backends:
            subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc",
                            f"CREATE SCHEMA {schema}"], check=True)
            await prepare(pg_url, units_text)
            import asyncpg

            pg_conn = await asyncpg.connect(host="127.0.0.1", user="postgres", database="test",
                                            server_settings={"search_path": schema})
        if "sqlite" in backends:
            await prepare(sqlite_url, units_text)
        try:
            loader = Loader(pg_conn, sqlite_path if "sqlite" in backends else None, tmpdir)
            started = time.perf_counter()
            derive_s = gen_s = 0.0
            counts = [0, 0, 0]
            for i, start in enumerate(range(0, args.records, CHUNK)):
                t0 = time.perf_counter()
                raws = generate_records(min(CHUNK, args.records - start), handling, seed=i,
                                        id_prefix=f"K{i:04d}-", days=365)
                gen_s += time.perf_counter() - t0
                recs, obls, cbs, spent = fact_rows(raws, ancestors)
                derive_s += spent
                counts = [counts[0] + len(recs), counts[1] + len(obls), counts[2] + len(cbs)]
                await loader.load(list(zip(FACT_MODELS, (recs, obls, cbs), strict=True)))
            loader.close()
            if pg_conn is not None:
                await pg_conn.execute("ANALYZE")
                await pg_conn.close()
            print(f"facts: {counts[0]} record rows, {counts[1]} obligation-step rows, {counts[2]} callback-step "
                  f"rows; derive {derive_s / args.records * 1e6:.1f} µs per record (pure Python); generation "
                  f"{gen_s:.0f}s, everything {time.perf_counter() - started:.0f}s", flush=True)

            print("reports (build_report: 3 GROUP BY queries + unit names):", flush=True)
            if "postgresql" in backends:
                await time_reports(pg_url, city, "postgresql")
            if "sqlite" in backends:
                await time_reports(sqlite_url, city, "sqlite")
            print("duckdb over the same facts exported to Parquet (the same 3 aggregates):", flush=True)
            for name, unit, level, d_from, d_to in REPORTS:
                unit = city if unit == "CITY" else unit
                own = 2 if unit == "510000" else 3
                t0 = time.perf_counter()
                con = duckdb.connect()
                total = duck_report(con, tmpdir, unit, own, level, d_from, d_to)
                cold = time.perf_counter() - t0
                warm = []
                for _ in range(5):
                    t0 = time.perf_counter()
                    duck_report(con, tmpdir, unit, own, level, d_from, d_to)
                    warm.append(time.perf_counter() - t0)
                con.close()
                print(f"  {'duckdb':10} {name:24} cold {cold * 1000:8.1f} ms  warm "
                      f"{statistics.median(warm) * 1000:8.1f} ms  ({total} records)", flush=True)
            print(f"peak RSS of this process (generation and loading included): "
                  f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB", flush=True)

            if args.import_records:
                print("facts derivation during import (ingest_raw in batches of 1000):", flush=True)
                for backend, url in (("postgresql", pg_url), ("sqlite", sqlite_url)):
                    if backend in backends:
                        print(f"  {backend}:", flush=True)
                        await import_cost(url, args.import_records, handling)
        finally:
            if "postgresql" in backends:
                subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc",
                                f"DROP SCHEMA {schema} CASCADE"], check=True, capture_output=True)


if __name__ == "__main__":
    asyncio.run(main())
