"""Import and sync at the speed of the database (issue 12): one run, one generated file, four measurements.

1. The minimal loader: `orjson` per line and two binary COPYs (records, events) into the gateway's own
   tables, no validation, no derived data: what the database does at best with this file on this machine
   now. Every ratio below is against it, measured in the same run, so a busy machine slows both: right
   before and right after the import, and the mean of the two taken (the machine's speed drifts).
2. `gateway import FILE` as an operator runs it (a subprocess): validation, the upsert, KPI facts, flag
   rules, early warning, personal data apart, metrics. Also on a file a tenth the size, for peak memory.
3. `gateway sync --once` from the platform simulator serving the same records (another process).
4. `rebuild_all` (deriving every stored record's KPI facts again after a policy change) as it is, against
   the per-batch derivation it replaced (`_derive_batch` over batches of ids, run here as the reference).

Each step: records/s and peak RSS (the process and its workers, sampled). Then one line per goal:

    goal import-ratio: 0.52 (goal >= 0.3) PASS       import rate / minimal loader rate (PostgreSQL)
    goal sync-ratio: 0.91 (goal >= 0.8) PASS         sync rate / import rate (PostgreSQL)
    goal rss-growth: 0.04 (goal <= 0.1) PASS         peak RSS of the import at N / at N/10, minus 1
    goal rebuild-speedup: 12.3 (goal >= 10) PASS     rebuild_all rate / the reference's rate

    .venv/bin/python bench/import_bench.py --records 100000
    .venv/bin/python bench/import_bench.py --records 1000000 --backends postgresql

SQLite gets the import ratio too, without a goal. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connectors.simulators.data import generate_records  # noqa: E402
from connectors.simulators.server import run_in_process  # noqa: E402
from gateway.units.sample import province_tree, units_csv  # noqa: E402

PG_URL = os.environ.get("GATEWAY_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
CHUNK = 20_000
GATEWAY = str(ROOT / ".venv/bin/gateway")
# The policy change a rebuild follows: a new version from mid-2024 with other day counts.
POLICY = {"policies": [{"version": "bench-2024", "effective_from": "2024-07-01",
                        "days": {"C_ACCEPT": 5, "C_CONCLUDE": 30, "R_DECIDE": 10, "R_REPLY": 3},
                        "r_decide_extension_cap": 10}]}


# ------------------------------------------------------------------------------------------------ the data


def generate(path: Path, n: int, units: list[str]) -> None:
    if path.exists():
        return
    started = time.perf_counter()
    tmp = path.with_suffix(".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=3) as out:
        for i, start in enumerate(range(0, n, CHUNK)):
            for rec in generate_records(min(CHUNK, n - start), units, seed=i, id_prefix=f"B{i:04d}-", days=365):
                out.write(json.dumps(rec, ensure_ascii=False) + "\n")
    tmp.rename(path)
    print(f"generated {n} records in {time.perf_counter() - started:.1f}s -> {path} "
          f"({path.stat().st_size / 1e6:.0f} MB)", flush=True)


# ------------------------------------------------------------------------------------ running and measuring


class Peak:
    """Peak RSS of a process and all its descendants together, sampled every 50 ms."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                proc = psutil.Process(self.pid)
                total = proc.memory_info().rss + sum(
                    c.memory_info().rss for c in proc.children(recursive=True) if c.is_running()
                )
                self.peak = max(self.peak, total)
            except psutil.Error:
                pass
            self._stop.wait(0.05)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak // (1 << 20)


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """(seconds, peak RSS in MiB of the process tree, stdout); exits on failure."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = Peak(proc.pid)
    out, err = proc.communicate()
    elapsed = time.perf_counter() - started
    mib = peak.stop()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed ({proc.returncode}): {err.strip()[-800:]}")
    return elapsed, mib, out.strip()


@contextmanager
def database(backend: str) -> Iterator[str]:
    """A fresh, migrated database with the units loaded: its URL."""
    with tempfile.TemporaryDirectory() as tmp:
        schema = None
        if backend == "postgresql":
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            psql(f"CREATE SCHEMA {schema}")
            url = f"{PG_URL}?search_path={schema}"
        else:
            url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        env = {**os.environ, "GATEWAY_DATABASE_URL": url}
        subprocess.run([GATEWAY, "migrate"], env=env, check=True, capture_output=True)
        subprocess.run([GATEWAY, "import-units", str(UNITS_FILE)], env=env, check=True, capture_output=True)
        try:
            yield url
        finally:
            if schema:
                psql(f"DROP SCHEMA {schema} CASCADE")


def psql(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc", sql], check=True,
                   capture_output=True)


def line(name: str, n: int, seconds: float, mib: int, note: str = "") -> float:
    rate = n / seconds
    print(f"  {name:26s} {n:>9} records in {seconds:7.1f}s = {rate:8.0f} records/s, peak RSS {mib:5d} MiB"
          + (f"  [{note}]" if note else ""), flush=True)
    return rate


def goal(name: str, value: float, op: str, target: float) -> bool:
    ok = value >= target if op == ">=" else value <= target
    print(f"goal {name}: {value:.2f} (goal {op} {target:g}) {'PASS' if ok else 'FAIL'}", flush=True)
    return ok


# --------------------------------------------------------------------------------------- the minimal loader


def minimal(url: str, path: Path) -> None:
    """orjson per line, two COPYs per 5,000 records (each batch its own transaction), no checks."""
    import orjson

    now = datetime.now(UTC)
    c_cols = ["id", "kind", "channel", "hotline", "urgency", "category", "received_at", "received_day",
              "handling_unit", "region_code", "respondent_uscc", "respondent_name", "real_name", "summary",
              "content_hash", "created_at", "updated_at"]
    e_cols = ["id", "complaint_id", "seq", "type", "at", "unit", "data"]

    def rows() -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
        complaints: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
        with gzip.open(path, "rb") as fh:
            for raw in fh:
                r = orjson.loads(raw)
                at = datetime.fromisoformat(r["received_at"])
                resp = r["respondent"] or {}
                complaints.append((
                    r["id"], r["kind"], r["channel"], r["hotline"], r["urgency"], r["category"], at, at.date(),
                    r["handling_unit"], r["region_code"], resp.get("uscc"), resp.get("name"),
                    r["complainant"]["real_name"], r["summary"], "", now, now,
                ))
                for seq, e in enumerate(r["events"]):
                    events.append((e["id"], r["id"], seq, e["type"], datetime.fromisoformat(e["at"]), e["unit"],
                                   orjson.dumps(e["data"]).decode()))
                if len(complaints) >= 5000:
                    yield complaints, events
                    complaints, events = [], []
        if complaints:
            yield complaints, events

    if url.startswith("sqlite"):
        import sqlite3

        db = sqlite3.connect(url.split("///", 1)[1])
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):  # as the gateway runs it
            db.execute(f"PRAGMA {pragma}")
        for complaints, events in rows():
            with db:
                db.executemany(f"INSERT INTO complaints ({','.join(c_cols)}) VALUES ({','.join('?' * len(c_cols))})",
                               [_sqlite_row(r) for r in complaints])
                db.executemany(f"INSERT INTO events ({','.join(e_cols)}) VALUES ({','.join('?' * len(e_cols))})",
                               [_sqlite_row(r) for r in events])
        return

    import asyncpg

    async def load() -> None:
        dsn, _, schema = url.replace("postgresql+asyncpg", "postgresql").partition("?search_path=")
        conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
        for complaints, events in rows():
            async with conn.transaction():
                await conn.copy_records_to_table("complaints", records=complaints, columns=c_cols)
                await conn.copy_records_to_table("events", records=events, columns=e_cols)
        await conn.close()

    asyncio.run(load())


def _sqlite_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(
        v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v for v in row
    )


# ------------------------------------------------------------------------------------------------ rebuild


def rebuild(url: str, which: str, limit: int) -> None:
    """Derive the facts of the stored records again with POLICY: `new` is `rebuild_all`, `old` the per-batch
    derivation over the first `limit` records. Prints the number of records."""
    from sqlalchemy import select

    from gateway.complaints.models import Complaint
    from gateway.core.db import make_engine, make_sessionmaker, transaction
    from gateway.reports import facts
    from kpi.policies import Policies

    base = facts.configured()
    config = facts.KpiConfig(base.calendar, Policies.from_json(json.dumps(POLICY)))

    async def go() -> int:
        engine = make_engine(url)
        sm = make_sessionmaker(engine)
        try:
            if which == "new":
                async with transaction(sm) as session:
                    return await facts.rebuild_all(session, config)
            count, after = 0, ""
            async with transaction(sm) as session:
                while count < limit:
                    query = select(Complaint.id).where(Complaint.id > after).order_by(Complaint.id)
                    ids = list((await session.execute(query.limit(facts.RECORDS_PER_DERIVATION))).scalars())
                    if not ids:
                        break
                    await facts._derive_batch(session, ids, config)
                    count, after = count + len(ids), ids[-1]
            return count
        finally:
            await engine.dispose()

    print(asyncio.run(go()))


# ---------------------------------------------------------------------------------------------------- main

UNITS_FILE = ROOT / "bench" / "out" / "units-51.csv"


def measure(backend: str, data: Path, small: Path, n: int, args: argparse.Namespace) -> dict[str, float]:
    print(f"\n{backend}", flush=True)
    me = [sys.executable, str(Path(__file__).resolve())]
    out: dict[str, float] = {}

    def reference(when: str) -> float:
        with database(backend) as url:
            seconds, mib, _ = run([*me, "--role", "minimal", "--url", url, "--file", str(data)], dict(os.environ))
            return line(f"minimal loader ({when})", n, seconds, mib)

    # The reference is measured before and after the import, and the import compared with their mean: the
    # machine's speed drifts over minutes (the loader alone ran 11.7 k/s and 17.4 k/s an hour apart).
    before = reference("before")
    with database(backend) as url:
        env = {**os.environ, "GATEWAY_DATABASE_URL": url}
        seconds, mib, summary = run([GATEWAY, "import", str(data), "--quiet"], env)
        out["import"] = line("gateway import", n, seconds, mib, summary)
        out["import_rss"] = mib
        out["minimal"] = (before + reference("after")) / 2
        if backend == "postgresql" and not args.skip_rebuild:
            limit = min(n, args.rebuild_reference_limit)
            seconds, mib, done = run([*me, "--role", "rebuild-old", "--url", url, "--limit", str(limit)], env)
            out["rebuild_old"] = line("per-batch derivation (ref)", int(done), seconds, mib)
            seconds, mib, done = run([*me, "--role", "rebuild-new", "--url", url], env)
            out["rebuild_new"] = line("rebuild_all", int(done), seconds, mib)
    with database(backend) as url:
        env = {**os.environ, "GATEWAY_DATABASE_URL": url}
        seconds, mib, summary = run([GATEWAY, "import", str(small), "--quiet"], env)
        line("gateway import (N/10)", n // 10, seconds, mib, summary)
        out["small_rss"] = mib
    if backend == "postgresql" and not args.skip_sync:
        with database(backend) as url, run_in_process("complaints", "--records-file", str(data)) as sim:
            env = {**os.environ, "GATEWAY_DATABASE_URL": url, "GATEWAY_COMPLAINTS_URL": sim}
            seconds, mib, summary = run([GATEWAY, "sync", "--once"], env)
            out["sync"] = line("gateway sync --once", n, seconds, mib, summary)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--skip-sync", action="store_true")
    parser.add_argument("--skip-rebuild", action="store_true")
    parser.add_argument("--rebuild-reference-limit", type=int, default=200_000,
                        help="records the reference derivation is timed on (its rate is per record)")
    parser.add_argument("--role", choices=("minimal", "rebuild-old", "rebuild-new"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "minimal":
        return minimal(args.url, Path(args.file))
    if args.role in ("rebuild-old", "rebuild-new"):
        return rebuild(args.url, args.role.removeprefix("rebuild-"), args.limit)

    UNITS_FILE.parent.mkdir(parents=True, exist_ok=True)
    rows = province_tree("51", stations_per_county=2)
    UNITS_FILE.write_text(units_csv(rows), encoding="utf-8")
    handling = [code for code, _, level, _ in rows if level >= 4]
    n, small_n = args.records, args.records // 10
    data = UNITS_FILE.parent / f"records-{n}.jsonl.gz"
    small = UNITS_FILE.parent / f"records-{small_n}.jsonl.gz"
    generate(data, n, handling)
    generate(small, small_n, handling)
    load = os.getloadavg()
    print(f"{os.cpu_count()} cores, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the start", flush=True)

    results = {backend: measure(backend, data, small, n, args) for backend in args.backends.split(",")}
    load = os.getloadavg()
    print(f"\nload average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the end", flush=True)
    if "sqlite" in results:
        r = results["sqlite"]
        print(f"sqlite import-ratio: {r['import'] / r['minimal']:.2f} (no goal)")
    if "postgresql" in results:
        r = results["postgresql"]
        goal("import-ratio", r["import"] / r["minimal"], ">=", 0.3)
        if "sync" in r:
            goal("sync-ratio", r["sync"] / r["import"], ">=", 0.8)
        goal("rss-growth", r["import_rss"] / r["small_rss"] - 1, "<=", 0.1)
        if "rebuild_new" in r:
            goal("rebuild-speedup", r["rebuild_new"] / r["rebuild_old"], ">=", 10)


if __name__ == "__main__":
    main()
