"""Complaint flags end to end (issue 6): import N records that raise about N/40 flags, then deliver them with
`gateway dispatch` to credit and emergency simulators (separate processes, real HTTP) that fail a share of
requests with 503. Measures the import (rules included), the time until the outbox is empty, flags/s, and
checks the receiver: exactly the expected flags (computed here from the generated records), none twice.

    .venv/bin/python bench/flags_bench.py                        # 200,000 records, 30 % failures, SQLite
    .venv/bin/python bench/flags_bench.py --records 50000 --dispatchers 2 \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test

Goal: the receiver holds exactly the expected set of flags and incidents, none duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connectors.simulators.data import make_uscc  # noqa: E402
from gateway.core.db import make_engine  # noqa: E402
from gateway.core.time import SHANGHAI  # noqa: E402
from gateway.flags.rules import CASE_FILED, CRITICAL_SAFETY, SAFETY_CATEGORIES, SURGE, flag_id, month_of  # noqa: E402
from gateway.units.sample import province_tree, units_csv  # noqa: E402

GATEWAY = str(ROOT / ".venv/bin/gateway")
TOKEN = "bench-token"
CATEGORIES = ("FOOD", "DRUG", "MEDICAL_DEVICE", "SPECIAL_EQUIPMENT", "COSMETICS", "PRODUCT_QUALITY", "PRICE",
              "SERVICE", "CONTRACT", "OTHER")
START = datetime(2024, 1, 1, tzinfo=SHANGHAI)
DAYS = 182


# ---------------------------------------------------------------------------------------------- data


def generate(n: int, units: list[str], seed: int) -> tuple[list[dict[str, Any]], set[str], set[str]]:
    """Records, and the flag_ids and incident keys the rules must yield from them (computed independently)."""
    rng = random.Random(seed)
    hot = [make_uscc(rng, "510104") for _ in range(max(1, n // 480))]  # about 2,500 surging months at 200k
    pool = [make_uscc(rng, "510802") for _ in range(max(10, n // 2))]
    records: list[dict[str, Any]] = []

    def add(uscc: str | None, at: datetime, kind: str, urgency: str = "NORMAL", category: str | None = None,
            events: list[dict[str, Any]] | None = None) -> None:
        rid = f"F{len(records):07d}"
        records.append({
            "id": rid, "kind": kind, "channel": "HOTLINE", "hotline": "12315", "urgency": urgency,
            "category": category or rng.choice(CATEGORIES), "received_at": at.isoformat(),
            "handling_unit": rng.choice(units), "region_code": None,
            "respondent": {"uscc": uscc, "name": "某某有限公司"} if uscc else None,
            "complainant": {"name": "张三", "phone": "13800000000", "real_name": True},
            "summary": "消费者反映商品质量问题", "amount_involved": None, "recovered_amount": None,
            "events": [dict(e, id=f"{rid}-{e['id']}") for e in events or []],
        })

    def instant(month: int | None = None) -> datetime:
        if month is None:
            return START + timedelta(seconds=rng.randrange(DAYS * 86400))
        first = START.replace(month=month)
        return first + timedelta(seconds=rng.randrange(28 * 86400))

    for uscc in hot:  # surging enterprises: 5 to 12 complaints in each of six months
        for month in range(1, 7):
            for _ in range(rng.randint(5, 12)):
                add(uscc, instant(month), "COMPLAINT")
    while len(records) < n:
        r = rng.random()
        uscc = rng.choice(pool) if rng.random() < 0.8 else None
        if r < 0.0075:  # critical safety
            add(uscc or rng.choice(pool), instant(), "COMPLAINT", "CRITICAL", rng.choice(sorted(SAFETY_CATEGORIES)))
        elif r < 0.0125:  # a report that became a case
            at = instant()
            filed = {"id": "cf", "type": "CASE_FILED", "at": (at + timedelta(days=5)).isoformat(), "unit": None,
                     "data": {"case_no": f"CASE-{len(records)}"}}
            add(uscc or rng.choice(pool), at, "REPORT", events=[filed])
        elif r < 0.0135:  # critical, outside the safety categories: an incident, no flag
            add(uscc, instant(), "COMPLAINT", "CRITICAL", "PRICE")
        else:
            add(uscc, instant(), rng.choice(("COMPLAINT", "COMPLAINT", "REPORT", "INQUIRY")))
    rng.shuffle(records)  # arrival order has nothing to do with time

    expected: set[str] = set()
    per_month: Counter[tuple[str, str]] = Counter()
    incidents: set[str] = set()
    for rec in records:
        uscc = rec["respondent"]["uscc"] if rec["respondent"] else None
        day = datetime.fromisoformat(rec["received_at"]).astimezone(SHANGHAI).date()
        if rec["urgency"] == "CRITICAL":
            incidents.add(rec["id"])
        if not uscc:
            continue
        if rec["kind"] in ("COMPLAINT", "REPORT"):
            per_month[(uscc, month_of(day))] += 1
        if rec["urgency"] == "CRITICAL" and rec["category"] in SAFETY_CATEGORIES:
            expected.add(flag_id(CRITICAL_SAFETY, uscc, rec["id"]))
        if rec["kind"] == "REPORT" and any(e["type"] == "CASE_FILED" for e in rec["events"]):
            expected.add(flag_id(CASE_FILED, uscc, rec["id"]))
    expected |= {flag_id(SURGE, u, m) for (u, m), count in per_month.items() if count >= 5}
    return records, expected, incidents


# ---------------------------------------------------------------------------------------------- processes


def gateway(env: dict[str, str], *args: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([GATEWAY, *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"gateway {' '.join(args)} failed: {done.stderr.strip()[-800:]}")
    return time.perf_counter() - started, done.stdout.strip()


def simulator(system: str, failure_rate: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "connectors.simulators", system, "--token", TOKEN, "--error-rate", str(failure_rate),
         "--seed", "1"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if len(line) != 2:
        raise SystemExit(f"the {system} simulator did not start")
    return proc, line[1]


async def backlog(url: str) -> dict[str, int]:
    from sqlalchemy import text

    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT system, state, count(*) FROM outbox GROUP BY system, state"))
            return {f"{s}:{st}": n for s, st, n in rows.all()}
    finally:
        await engine.dispose()


# ---------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--failure-rate", type=float, default=0.3)
    parser.add_argument("--dispatchers", type=int, default=1, help="gateway dispatch processes at once")
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--seed", type=int, default=6)
    args, _ = parser.parse_known_args()

    work = Path(tempfile.mkdtemp(prefix="flags-bench-"))
    tree = province_tree("51")
    units = [code for code, _, level, _ in tree if level >= 4]
    (work / "units.csv").write_text(units_csv(tree), encoding="utf-8")
    started = time.perf_counter()
    records, expected, incidents = generate(args.records, units, args.seed)
    with gzip.open(work / "records.jsonl.gz", "wt", encoding="utf-8", compresslevel=3) as out:
        for rec in records:
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print(f"generated {len(records)} records in {time.perf_counter() - started:.1f}s: "
          f"{len(expected)} flags and {len(incidents)} incidents expected")

    if args.database_url and args.database_url.startswith("postgresql"):
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc", f"CREATE SCHEMA {schema}"],
                       check=True)
        db_url = f"{args.database_url}{'&' if '?' in args.database_url else '?'}search_path={schema}"
    else:
        db_url = args.database_url or f"sqlite+aiosqlite:///{work / 'gateway.db'}"
    credit, credit_url = simulator("credit", args.failure_rate)
    emergency, emergency_url = simulator("emergency", args.failure_rate)
    env = {**os.environ, "GATEWAY_DATABASE_URL": db_url, "GATEWAY_CREDIT_URL": credit_url,
           "GATEWAY_CREDIT_TOKEN": TOKEN, "GATEWAY_EMERGENCY_URL": emergency_url, "GATEWAY_EMERGENCY_TOKEN": TOKEN}
    dispatchers: list[subprocess.Popen[str]] = []
    try:
        gateway(env, "migrate")
        gateway(env, "import-units", str(work / "units.csv"))
        seconds, summary = gateway(env, "import", str(work / "records.jsonl.gz"), "--quiet")
        print(f"import with rules: {seconds:.1f}s, {len(records) / seconds:,.0f} records/s ({summary})")
        queued = asyncio.run(backlog(db_url))
        print(f"outbox after import: {queued}")

        started = time.perf_counter()
        dispatchers = [subprocess.Popen([GATEWAY, "dispatch"], env=env, stderr=subprocess.DEVNULL)
                       for _ in range(args.dispatchers)]
        while True:
            time.sleep(0.5)
            state = asyncio.run(backlog(db_url))
            if not any(k.endswith(":PENDING") for k in state):
                break
            if time.perf_counter() - started > 3600:
                raise SystemExit(f"not delivered within an hour: {state}")
        elapsed = time.perf_counter() - started
        for proc in dispatchers:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)

        with httpx.Client(timeout=60) as http:
            ledger = http.get(f"{credit_url}/_sim/flags").json()
            credit_stats = http.get(f"{credit_url}/_sim/stats").json()
            emergency_stats = http.get(f"{emergency_url}/_sim/stats").json()
        received = {f["flag_id"] for f in ledger}
        twice = sum(1 for f in ledger if f["times_received"] != 1)
        flags_n = len(expected)
        result = {
            "records": len(records), "dispatchers": args.dispatchers, "failure_rate": args.failure_rate,
            "database": db_url.split(":")[0], "import_s": round(seconds, 1),
            "flags_expected": flags_n, "flags_received": len(ledger), "flags_missing": len(expected - received),
            "flags_unexpected": len(received - expected), "flags_received_twice": twice,
            "incidents_expected": len(incidents),
            "incidents_created": emergency_stats["effects"].get("POST /api/v1/incidents", 0),
            "deliver_s": round(elapsed, 1), "flags_per_s": round(flags_n / elapsed, 1),
            "items_per_s": round((flags_n + len(incidents)) / elapsed, 1),
            "credit_requests": credit_stats["total_requests"], "credit_faults": credit_stats["faults_injected"],
            "credit_replays": credit_stats["replays"], "final_outbox": asyncio.run(backlog(db_url)),
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        print(json.dumps(result, indent=2))
        (ROOT / "bench" / "out").mkdir(exist_ok=True)
        (ROOT / "bench" / "out" / f"flags-{len(records)}.json").write_text(json.dumps(result, indent=2))
        ok = (result["flags_missing"] == result["flags_unexpected"] == twice == 0
              and result["incidents_created"] == len(incidents))
        print("OK: exactly the expected flags and incidents, none twice" if ok else "FAILED: see above")
        if not ok:
            raise SystemExit(1)
    finally:
        for proc in [*dispatchers, credit, emergency]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)


if __name__ == "__main__":
    main()
