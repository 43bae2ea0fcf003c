"""KPI report speed at national scale (issue 13): the 31 provinces' unit tree, one year of records.

1. Builds two data sets (default 1 M and 10 M records over 2024). The smaller one's facts are generated
   directly (lifecycles like the simulators', without the JSON records) and go through the production
   derivation (`kpi.obligations.derive`, `gateway.reports.facts.fact_rows`), then are bulk-loaded into
   PostgreSQL (COPY) and SQLite (executemany) and written to Parquet. The larger set handles each of those
   derived records at N units (copy 0 at its own): rows copied inside PostgreSQL, DuckDB and SQLite (sets up
   to --sqlite-max-records), so that 10 M records take minutes on two cores. The rollups are then built by
   `gateway.reports.rollups.rebuild`, the code an operator's re-derivation runs.
2. Times three reports with `gateway.reports.build.build_report`, cold (first run on a fresh engine) and warm
   (median of 5): province by city for a quarter, national by province for the year, city by station for the
   year; PostgreSQL and SQLite must give the same document.
3. Times DuckDB over the same facts in Parquet, running the per-record aggregates (what a report was before
   rollups: three GROUP BYs over the facts), cold (new connection) and warm.
4. Measures what storing costs: `ingest_raw` of --import-records records without KPI facts, with facts but no
   rollups, and with both.
5. Ends with the goals of issue 13, judged against the bar:
   R-a province-by-city quarter at the smaller set, PostgreSQL warm / DuckDB warm (<= 1.5);
   R-b national-by-province year at the larger set, PostgreSQL warm, seconds (<= 2);
   R-c the same report at the larger set / at the smaller set, PostgreSQL warm (<= 3).

    .venv/bin/python bench/kpi_bench.py                                   # 1 M and 10 M records
    .venv/bin/python bench/kpi_bench.py --sizes 100000,1000000 --import-records 5000
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
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
from gateway.ingest.units_file import import_units  # noqa: E402
from gateway.reports import rollups  # noqa: E402
from gateway.reports.build import build_report  # noqa: E402
from gateway.reports.facts import CONFIG_KEY, NewRecord, fact_rows, kpi_config  # noqa: E402
from gateway.reports.models import RECORD_FACT_MODELS  # noqa: E402
from gateway.units.sample import province_tree, tree_ancestors, units_csv  # noqa: E402
from kpi.obligations import EventIn, RecordIn, derive, local_day  # noqa: E402

PG_URL = os.environ.get("GATEWAY_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
CHUNK = 50_000
CST = timedelta(hours=8)
START = datetime(2024, 1, 1, tzinfo=UTC) - CST  # 2024-01-01T00:00+08:00
HORIZON = START + timedelta(days=365 + 20)  # lifecycles stop here, as the simulators' do
AS_OF = datetime.fromisoformat("2025-01-20T00:00:00+08:00")
CONFIG = kpi_config()
PROVINCES = ("11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41",
             "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65")


# ------------------------------------------------------------------------------------------------ data


def national_tree() -> list[tuple[str, str, int, str]]:
    """The national administration, 31 provinces, their cities and counties, two stations per county."""
    rows: dict[str, tuple[str, str, int, str]] = {}
    for prefix in PROVINCES:
        for row in province_tree(prefix, stations_per_county=2):
            rows.setdefault(row[0], row)
    return sorted(rows.values(), key=lambda r: (r[2], r[0]))


class Weighted:
    """rng.choices for one table, without rebuilding the cumulative weights at every call."""

    def __init__(self, table: tuple[tuple[Any, int], ...]) -> None:
        self.values = [v for v, _ in table]
        total, self.cum = 0, []
        for _, w in table:
            total += w
            self.cum.append(total)
        self.total = total

    def pick(self, rng: random.Random) -> Any:
        return self.values[bisect.bisect_right(self.cum, rng.random() * self.total)]


KINDS = Weighted((("COMPLAINT", 55), ("REPORT", 25), ("INQUIRY", 15), ("SUGGESTION", 5)))
CHANNELS = Weighted((("HOTLINE", 45), ("WEB", 15), ("WECHAT", 12), ("APP", 8), ("MINI_PROGRAM", 6), ("SMS", 2),
                     ("LETTER", 2), ("VISIT", 3), ("GOV_HOTLINE_TRANSFER", 6), ("OTHER_TRANSFER", 1)))
HOTLINES = Weighted((("12315", 80), ("12365", 8), ("12331", 6), ("12358", 4), ("12330", 2)))
SATISFACTION = Weighted((("SATISFIED", 70), ("BASICALLY_SATISFIED", 15), ("UNSATISFIED", 8), ("UNREACHABLE", 7)))


def lifecycle(rng: random.Random, kind: str, received: datetime, real_name: bool) -> tuple[list[EventIn], int]:
    """The events a rule of kpi.md reads, as the simulators' records have them; and recovered cents."""
    events: list[EventIn] = []
    at = received
    open_ = True

    def add(type_: str, low: float, high: float, data: dict[str, Any] | None = None) -> bool:
        nonlocal at, open_
        if not open_:
            return False
        nxt = at + timedelta(hours=rng.uniform(low * 24, high * 24))
        if nxt > HORIZON:
            open_ = False
            return False
        at = nxt
        events.append(EventIn(type_, at, data or {}))
        return True

    recovered = 0
    stop_early = rng.random() < 0.12
    if kind == "COMPLAINT":
        amount = rng.randrange(2000, 2_000_000) if rng.random() < 0.7 else 0
        if rng.random() < 0.1:
            add("REJECTED", 1, 9)
            add("REPLIED", 0, 2)
        elif add("ACCEPTED", 0.5, 10) and not stop_early:
            succeeded = rng.random() < 0.6
            if add("MEDIATION_SUCCEEDED" if succeeded else "MEDIATION_FAILED", 3, 55):
                if succeeded and amount:
                    recovered = amount * rng.choice((10, 5, 8)) // 10
                add("REPLIED", 0, 3)
                if rng.random() < 0.8:
                    add("CALLBACK", 1, 6, {"satisfaction": SATISFACTION.pick(rng)})
                add("CLOSED", 0, 2)
    elif kind == "REPORT":
        if rng.random() < 0.1:
            add("EXTENDED", 8, 14, {"working_days": 15})
        if not stop_early:
            add("CASE_FILED" if rng.random() < 0.3 else "CASE_NOT_FILED", 2, 22)
            if real_name:
                add("REPLIED", 0.5, 8)
            add("CLOSED", 0, 3)
    elif not stop_early:
        add("REPLIED", 0, 3 if kind == "INQUIRY" else 10)
        add("CLOSED", 0, 1)
    return events, recovered


def synthesize(n: int, seed: int, prefix: str, handling: list[str],
               ancestors: dict[str, tuple[str | None, ...]]) -> Iterator[NewRecord]:
    """`n` records received over 2024 by the handling units, as the store would hand them to the facts."""
    rng = random.Random(seed)
    for i in range(n):
        kind = KINDS.pick(rng)
        channel = CHANNELS.pick(rng)
        unit = handling[int(rng.random() * len(handling))]
        received = START + timedelta(seconds=int(rng.random() * 365 * 86400))
        real_name = rng.random() < (0.85 if kind != "REPORT" else 0.6)
        events, cents = lifecycle(rng, kind, received, real_name)
        u1, u2, u3, u4, u5 = ancestors[unit]
        yield NewRecord(f"{prefix}{i:09d}", kind, channel, HOTLINES.pick(rng) if channel == "HOTLINE" else None,
                        received, local_day(received), real_name, cents, u1, u2, u3, u4, u5, events)


# ------------------------------------------------------------------------------------------------ loading


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
        elif "DateTime" in type(t).__name__:
            at = pa.timestamp("us", tz="UTC")
        else:
            at = pa.string()
        fields.append(pa.field(c.name, at))
    return pa.schema(fields)


@dataclass
class DataSet:
    """One data set: a PostgreSQL schema, maybe an SQLite file, a Parquet directory."""

    size: int
    schema: str
    sqlite_path: Path | None
    parquet_dir: Path
    pg: Any = None
    sqlite: sqlite3.Connection | None = None
    writers: dict[str, pq.ParquetWriter] | None = None

    @property
    def pg_url(self) -> str:
        return f"{PG_URL}?search_path={self.schema}"

    @property
    def sqlite_url(self) -> str | None:
        return f"sqlite+aiosqlite:///{self.sqlite_path}" if self.sqlite_path else None

    async def open(self) -> None:
        import asyncpg

        self.pg = await asyncpg.connect(host="127.0.0.1", user="postgres", database="test",
                                        server_settings={"search_path": self.schema})
        self.sqlite = sqlite3.connect(self.sqlite_path) if self.sqlite_path else None
        self.writers = {}

    async def load(self, tables: list[tuple[Any, list[dict[str, Any]]]]) -> None:
        assert self.writers is not None
        for model, rows in tables:
            if not rows:
                continue
            cols = columns(model)
            name = model.__tablename__
            await self.pg.copy_records_to_table(name, records=[tuple(r[c] for c in cols) for r in rows], columns=cols)
            if self.sqlite is not None:
                self.sqlite.executemany(
                    f"INSERT INTO {name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                    [tuple(sqlite_value(r[c]) for c in cols) for r in rows],
                )
            table = pa.Table.from_pylist([{c: r[c] for c in cols} for r in rows], schema=arrow_schema(model))
            if name not in self.writers:
                self.writers[name] = pq.ParquetWriter(self.parquet_dir / f"{name}.parquet", table.schema)
            self.writers[name].write_table(table)

    async def close(self) -> None:
        if self.sqlite is not None:
            self.sqlite.commit()
            self.sqlite.close()
        for w in (self.writers or {}).values():
            w.close()
        await self.pg.execute("ANALYZE")
        await self.pg.close()


def unit_map(handling: list[str], ancestors: dict[str, tuple[str | None, ...]], copies: int) -> list[tuple[Any, ...]]:
    """(copy, handling unit, u1..u5 of the unit its copy is handled by): copy 0 keeps the unit."""
    stride = max(1, len(handling) // copies)
    return [(k, h, *ancestors[handling[(i + k * stride) % len(handling)]])
            for k in range(copies) for i, h in enumerate(handling)]


def copy_select(model: Any, source: str) -> str:
    """SELECT of `model`'s columns from `source` joined to unit_map: each fact row once per copy, its record id
    suffixed with the copy and its units those of the copy's handling unit."""
    exprs = []
    for col in columns(model):
        if col == "complaint_id":
            exprs.append("t.complaint_id || '~' || CAST(m.k AS VARCHAR)")
        elif col in ("u1", "u2", "u3", "u4", "u5"):
            exprs.append(f"m.{col}")
        else:
            exprs.append(f"t.{col}")
    return (f"SELECT {', '.join(exprs)} FROM {source} t JOIN unit_map m ON m.unit = coalesce(t.u5, t.u4)")


async def replicate(small: DataSet, large: DataSet, mapping: list[tuple[Any, ...]]) -> None:
    """The larger set from the smaller one, every derived record handled at `copies` units: in PostgreSQL
    (INSERT … SELECT), DuckDB (Parquet to Parquet) and SQLite (ATTACH), without Python in the row path."""
    import asyncpg

    conn = await asyncpg.connect(host="127.0.0.1", user="postgres", database="test",
                                 server_settings={"search_path": large.schema})
    await conn.execute("CREATE TABLE unit_map (k int, unit varchar, u1 varchar, u2 varchar, u3 varchar, "
                       "u4 varchar, u5 varchar)")
    await conn.copy_records_to_table("unit_map", records=mapping)
    for model in RECORD_FACT_MODELS:
        name = model.__tablename__
        await conn.execute(f"INSERT INTO {name} ({', '.join(columns(model))}) "
                           + copy_select(model, f"{small.schema}.{name}"))
    await conn.execute("DROP TABLE unit_map")
    await conn.execute("ANALYZE")
    await conn.close()
    duck = duckdb.connect()
    duck.execute("CREATE TABLE unit_map (k INTEGER, unit VARCHAR, u1 VARCHAR, u2 VARCHAR, u3 VARCHAR, "
                 "u4 VARCHAR, u5 VARCHAR)")
    duck.executemany("INSERT INTO unit_map VALUES (?, ?, ?, ?, ?, ?, ?)", mapping)
    for model in RECORD_FACT_MODELS:
        name = model.__tablename__
        duck.execute(f"COPY ({copy_select(model, repr(str(small.parquet_dir / f'{name}.parquet')))}) "
                     f"TO '{large.parquet_dir / f'{name}.parquet'}' (FORMAT PARQUET)")
    duck.close()
    if large.sqlite_path and small.sqlite_path:
        lite = sqlite3.connect(large.sqlite_path)
        lite.execute(f"ATTACH DATABASE '{small.sqlite_path}' AS small")
        lite.execute("CREATE TEMP TABLE unit_map (k, unit, u1, u2, u3, u4, u5)")
        lite.executemany("INSERT INTO unit_map VALUES (?, ?, ?, ?, ?, ?, ?)", mapping)
        lite.execute("CREATE INDEX temp.ix_unit_map ON unit_map (unit)")
        for model in RECORD_FACT_MODELS:
            name = model.__tablename__
            lite.execute(f"INSERT INTO {name} ({', '.join(columns(model))}) "
                         + copy_select(model, f"small.{name}").replace("CAST(m.k AS VARCHAR)", "m.k"))
        lite.commit()
        lite.close()


async def prepare(url: str, units_text: str) -> None:
    engine = make_engine(url)
    await migrate(engine)
    sm = make_sessionmaker(engine)
    async with transaction(sm) as session:
        await import_units(session, units_text)
        await set_state(session, CONFIG_KEY, CONFIG.fingerprint)
    await engine.dispose()


async def build_rollups(url: str) -> float:
    engine = make_engine(url)
    started = time.perf_counter()
    async with transaction(make_sessionmaker(engine)) as session:
        await rollups.rebuild(session)
    elapsed = time.perf_counter() - started
    await engine.dispose()
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite+aiosqlite:///")) as conn:
            conn.execute("ANALYZE")
    return elapsed


# ------------------------------------------------------------------------------------------------ reports


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
    from kpi.metrics import CHANNELS as CH
    from kpi.metrics import HOTLINES as HL
    from kpi.metrics import KINDS as KD

    def counts(col: str, values: tuple[str, ...]) -> str:
        return ", ".join(f"sum(CASE WHEN {col} = '{v}' THEN 1 ELSE 0 END)" for v in values)

    params = {"unit": unit, "from": d_from, "to": d_to, "as_of": AS_OF, "day": local_day(AS_OF)}
    total = 0
    for name, sql in DUCK_SQL.items():
        text = sql.format(row=f"u{level}", own=f"u{own}", dir=parquet, kinds=counts("kind", KD),
                          channels=counts("channel", CH), hotlines=counts("hotline", HL))
        used = {k: v for k, v in params.items() if f"${k}" in text}
        rows = con.execute(text, used).fetchall()
        if name == "records":
            total = sum(r[1] for r in rows)
    return total


async def timed(fn: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await fn()
    return time.perf_counter() - started, result


@dataclass(frozen=True)
class Report:
    name: str
    unit: str
    own_level: int
    level: int
    date_from: date
    date_to: date


def reports(city: str) -> list[Report]:
    return [
        Report("province by city, Q2", "510000", 2, 3, date(2024, 4, 1), date(2024, 6, 30)),
        Report("national by province, year", "100000", 1, 2, date(2024, 1, 1), date(2024, 12, 31)),
        Report("city by station, year", city, 3, 5, date(2024, 1, 1), date(2024, 12, 31)),
    ]


async def time_report(url: str, rep: Report) -> tuple[float, float, dict[str, Any]]:
    engine = make_engine(url)
    sm = make_sessionmaker(engine)

    async def run() -> Any:
        async with sm() as session:
            return await build_report(session, unit=rep.unit, level=rep.level, date_from=rep.date_from,
                                      date_to=rep.date_to, as_of=AS_OF, config=CONFIG)

    cold, doc = await timed(run)
    warm = statistics.median([(await timed(run))[0] for _ in range(5)])
    await engine.dispose()
    return cold, warm, doc


def time_duck(parquet: Path, rep: Report) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    con = duckdb.connect()
    total = duck_report(con, parquet, rep.unit, rep.own_level, rep.level, rep.date_from, rep.date_to)
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(5):
        t0 = time.perf_counter()
        duck_report(con, parquet, rep.unit, rep.own_level, rep.level, rep.date_from, rep.date_to)
        warm.append(time.perf_counter() - t0)
    con.close()
    return cold, statistics.median(warm), total


# ------------------------------------------------------------------------------------------------ storing


async def import_cost(url: str, n: int, handling: list[str]) -> str:
    """ingest_raw in batches of 1000: without KPI facts, with facts but no rollups, with both."""
    import gateway.ingest.store as store
    from gateway.ingest.store import ingest_raw

    raws = generate_records(n, handling, seed=99, id_prefix="I", days=365)
    engine = make_engine(url)
    sm = make_sessionmaker(engine)
    real_derive, real_add = store.derive_facts, rollups.add

    async def noop(*_: Any, **__: Any) -> None:
        return None

    results = {}
    variants = (("no KPI facts", "a", noop, real_add), ("facts, no rollups", "b", real_derive, noop),
                ("facts and rollups", "c", real_derive, real_add))
    try:
        for label, prefix, derive_hook, add_hook in variants:
            store.derive_facts = derive_hook  # type: ignore[assignment]
            rollups.add = add_hook  # type: ignore[assignment]
            batch = [dict(r, id=f"{prefix}{r['id']}", events=[dict(e, id=f"{prefix}{e['id']}") for e in r["events"]])
                     for r in raws]
            started = time.perf_counter()
            for i in range(0, n, 1000):
                async with transaction(sm) as session:
                    await ingest_raw(session, batch[i:i + 1000])
            results[label] = time.perf_counter() - started
    finally:
        store.derive_facts, rollups.add = real_derive, real_add  # type: ignore[assignment]
        await engine.dispose()
    return ", ".join(f"{label} {n / s:6.0f} rec/s" for label, s in results.items())


# ------------------------------------------------------------------------------------------------ main


def verdict(name: str, value: float, bar: float) -> str:
    return f"goal {name}: {value:.2f} (goal <= {bar:g}) {'PASS' if value <= bar else 'FAIL'}"


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,10000000", help="two data sets: smaller,larger")
    parser.add_argument("--sqlite-max-records", type=int, default=1_000_000,
                        help="load SQLite only for sets up to this size (10 M rows of SQLite take long to load)")
    parser.add_argument("--import-records", type=int, default=10_000)
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL schemas (to look at plans)")
    args = parser.parse_args()
    small, large = (int(s) for s in args.sizes.split(","))
    copies = large // small
    if copies * small != large or copies < 1:
        parser.error("the larger size must be a multiple of the smaller")

    tree = national_tree()
    units_text = units_csv(tree)
    ancestors = tree_ancestors(tree)
    handling = [code for code, _, level, _ in tree if level >= 4]
    city = max((code for code, _, level, _ in tree if level == 3 and code.startswith("51")),
               key=lambda c: sum(1 for h in handling if ancestors[h][2] == c))
    print(f"{len(tree)} units ({sum(1 for r in tree if r[2] == 2)} provinces, {len(handling)} counties and "
          f"stations handle records); data sets of {small} and {large} records over 2024; as_of {AS_OF}; "
          f"city for the station report: {city}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        sets = []
        for size in (small, large):
            directory = Path(tmp) / str(size)
            directory.mkdir()
            sets.append(DataSet(size, f"kpibench_{uuid.uuid4().hex[:8]}",
                                directory / "kpi.db" if size <= args.sqlite_max_records else None, directory))
        try:
            for ds in sets:
                subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc",
                                f"CREATE SCHEMA {ds.schema}"], check=True)
                await prepare(ds.pg_url, units_text)
                if ds.sqlite_url:
                    await prepare(ds.sqlite_url, units_text)

            started = time.perf_counter()
            derive_s = 0.0
            rows = [0, 0, 0]
            first = sets[0]
            await first.open()
            for i, start in enumerate(range(0, small, CHUNK)):
                facts = []
                t0 = time.perf_counter()
                for rec in synthesize(min(CHUNK, small - start), i, f"K{i:04d}-", handling, ancestors):
                    facts.append(fact_rows(rec, derive(RecordIn(rec.kind, rec.received_at, rec.real_name, rec.events),
                                                       CONFIG.calendar, CONFIG.policies)))
                derive_s += time.perf_counter() - t0
                recs = [f[0] for f in facts]
                obls = [o for f in facts for o in f[1]]
                cbs = [c for f in facts for c in f[2]]
                rows = [rows[0] + len(recs), rows[1] + len(obls), rows[2] + len(cbs)]
                await first.load(list(zip(RECORD_FACT_MODELS, (recs, obls, cbs), strict=True)))
                if (i + 1) % 4 == 0:
                    print(f"  {start + CHUNK} records loaded, {time.perf_counter() - started:.0f}s", flush=True)
            await first.close()
            print(f"facts of {small} records: {rows[0]} record rows, {rows[1]} obligation-step rows, {rows[2]} "
                  f"callback-step rows; generation and derivation {derive_s / small * 1e6:.1f} µs per record; "
                  f"everything {time.perf_counter() - started:.0f}s", flush=True)
            started = time.perf_counter()
            await replicate(first, sets[1], unit_map(handling, ancestors, copies))
            print(f"facts of {large} records: each record of the smaller set handled at {copies} units "
                  f"(copies made in the databases: {time.perf_counter() - started:.0f}s)", flush=True)
            for ds in sets:
                pg_s = await build_rollups(ds.pg_url)
                line = f"  rollups.rebuild at {ds.size} records: postgresql {pg_s:.1f}s"
                if ds.sqlite_url:
                    line += f", sqlite {await build_rollups(ds.sqlite_url):.1f}s"
                print(line, flush=True)

            results: dict[tuple[int, str, str], float] = {}
            for ds in sets:
                print(f"reports at {ds.size} records (cold = first on a fresh engine, warm = median of 5):",
                      flush=True)
                for rep in reports(city):
                    cold, warm, doc = await time_report(ds.pg_url, rep)
                    results[(ds.size, rep.name, "postgresql")] = warm
                    line = (f"  {rep.name:27} postgresql cold {cold * 1000:7.1f} ms warm {warm * 1000:7.1f} ms "
                            f"({doc['total']['received']} records, {len(doc['rows'])} rows)")
                    if ds.sqlite_url:
                        s_cold, s_warm, s_doc = await time_report(ds.sqlite_url, rep)
                        assert s_doc == doc, "SQLite and PostgreSQL disagree"
                        line += f" | sqlite cold {s_cold * 1000:7.1f} ms warm {s_warm * 1000:7.1f} ms"
                    d_cold, d_warm, d_total = time_duck(ds.parquet_dir, rep)
                    assert d_total == doc["total"]["received"], (d_total, doc["total"]["received"])
                    results[(ds.size, rep.name, "duckdb")] = d_warm
                    line += f" | duckdb per-record cold {d_cold * 1000:7.1f} ms warm {d_warm * 1000:7.1f} ms"
                    print(line, flush=True)
            print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB",
                  flush=True)
            if args.import_records:
                print(f"storing {args.import_records} records (ingest_raw, batches of 1000) into the "
                      f"{sets[0].size}-record PostgreSQL set: "
                      f"{await import_cost(sets[0].pg_url, args.import_records, handling)}", flush=True)
                if sets[0].sqlite_url:
                    print(f"  ... into its SQLite copy: "
                          f"{await import_cost(sets[0].sqlite_url, args.import_records, handling)}", flush=True)
        finally:
            for ds in sets if not args.keep else ():
                subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc",
                                f"DROP SCHEMA IF EXISTS {ds.schema} CASCADE"], check=True, capture_output=True)

    a = results[(small, "province by city, Q2", "postgresql")] / results[(small, "province by city, Q2", "duckdb")]
    b = results[(large, "national by province, year", "postgresql")]
    c = b / results[(small, "national by province, year", "postgresql")]
    print(verdict("R-a", a, 1.5))
    print(verdict("R-b", b, 2))
    print(verdict("R-c", c, 3))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
