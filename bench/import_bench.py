"""Import throughput (issue: the foundation). Generates N realistic records (about 5 events each, spread
over a province's units) to a .jsonl.gz file, then times `gateway import` into PostgreSQL and SQLite as
an operator runs it (a subprocess), with its peak memory.

    .venv/bin/python bench/import_bench.py --records 1000000

Goal: at least 10,000 records/s into PostgreSQL on 2 cores, and flat memory (streaming).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connectors.simulators.data import generate_records  # noqa: E402
from gateway.units.sample import province_tree, units_csv  # noqa: E402

PG_URL = os.environ.get("GATEWAY_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
CHUNK = 20_000


def generate(path: Path, n: int, units: list[str]) -> None:
    started = time.perf_counter()
    tmp = path.with_suffix(".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=3) as out:
        for i, start in enumerate(range(0, n, CHUNK)):
            for rec in generate_records(min(CHUNK, n - start), units, seed=i, id_prefix=f"B{i:04d}-", days=365):
                out.write(json.dumps(rec, ensure_ascii=False) + "\n")
    tmp.rename(path)
    print(f"generated {n} records in {time.perf_counter() - started:.1f}s -> {path} "
          f"({path.stat().st_size / 1e6:.0f} MB)")


def run(env: dict[str, str], *args: str) -> tuple[float, int, str]:
    """(seconds, peak RSS in MiB of the child, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run([str(ROOT / ".venv/bin/gateway"), *args], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"gateway {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, max(peak, before) // 1024, done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--backends", default="postgresql,sqlite")
    args = parser.parse_args()

    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    rows = province_tree("51", stations_per_county=2)
    units_file = out / "units-51.csv"
    units_file.write_text(units_csv(rows), encoding="utf-8")
    handling = [code for code, _, level, _ in rows if level >= 4]
    data = out / f"records-{args.records}.jsonl.gz"
    if not data.exists():
        generate(data, args.records, handling)

    results: dict[str, float] = {}
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            if backend == "postgresql":
                schema = f"bench_{uuid.uuid4().hex[:8]}"
                subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc",
                                f"CREATE SCHEMA {schema}"], check=True)
                url = f"{PG_URL}?search_path={schema}"
            else:
                url = f"sqlite+aiosqlite:///{tmp}/bench.db"
            env = {**os.environ, "GATEWAY_DATABASE_URL": url}
            run(env, "migrate")
            run(env, "import-units", str(units_file))
            seconds, peak_mib, summary = run(env, "import", str(data), "--quiet")
            rate = args.records / seconds
            results[backend] = rate
            print(f"{backend:10s} {args.records} records in {seconds:6.1f}s = {rate:8.0f} records/s, "
                  f"peak RSS {peak_mib} MiB  [{summary}]")
            if backend == "postgresql":
                subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc",
                                f"DROP SCHEMA {schema} CASCADE"], check=True)
    if "postgresql" in results:
        print(f"PostgreSQL rate / goal (10,000 records/s): {results['postgresql'] / 10_000:.2f}")


if __name__ == "__main__":
    main()
