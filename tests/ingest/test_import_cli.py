"""`gateway import-units` and `gateway import` as an operator runs them: real subprocesses, exit codes."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from gateway.complaints.models import Complaint
from tests.conftest import Database
from tests.factories import UNITS_CSV, record


def gateway(db: Database, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], capture_output=True, text=True, env=db.env(), timeout=120
    )


async def count(db: Database) -> int:
    async with db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Complaint)) or 0)


async def test_import_with_bad_lines(db: Database, tmp_path: Path) -> None:
    units = tmp_path / "units.csv"
    units.write_text(UNITS_CSV, encoding="utf-8")
    done = gateway(db, "import-units", str(units))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "units: 11 added, 0 updated"

    lines = [json.dumps(record(f"L-{i}"), ensure_ascii=False) for i in range(5)]
    lines.insert(1, "{not json")
    lines.insert(3, json.dumps(record("L-bad", urgency="SOON")))
    lines.insert(4, "")  # blank lines are skipped, not rejected
    data = tmp_path / "records.jsonl.gz"
    data.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    rejects = tmp_path / "rejects.jsonl"

    done = gateway(db, "import", str(data), "--rejects", str(rejects))
    assert done.returncode == 1
    assert "stored 5" in done.stdout and "rejected 2" in done.stdout
    assert "line 2: not valid JSON" in done.stderr and "line 4: urgency:" in done.stderr
    written = [json.loads(x) for x in rejects.read_text().splitlines()]
    assert [(w["line"], w["id"]) for w in written] == [(2, None), (4, "L-bad")]
    assert await count(db) == 5

    # Idempotent: importing again stores nothing new.
    done = gateway(db, "import", str(data), "--quiet")
    assert done.returncode == 1 and "unchanged 5" in done.stdout
    assert await count(db) == 5


async def test_exit_codes(db: Database, tmp_path: Path) -> None:
    units = tmp_path / "units.csv"
    units.write_text(UNITS_CSV, encoding="utf-8")
    assert gateway(db, "import-units", str(units)).returncode == 0
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps(record("G-1")) + "\n")
    done = gateway(db, "import", str(good), "--quiet")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1  # the result, and nothing else, on stdout

    missing = gateway(db, "import", str(tmp_path / "missing.jsonl"))
    assert missing.returncode == 2 and "cannot open" in missing.stderr
    assert "Traceback" not in missing.stderr
    not_gzip = tmp_path / "broken.jsonl.gz"
    not_gzip.write_bytes(b"this is not gzip")
    done = gateway(db, "import", str(not_gzip))
    assert done.returncode == 2 and "gzip" in done.stderr


async def test_broken_unit_file_loads_nothing(db: Database, tmp_path: Path) -> None:
    units = tmp_path / "units.csv"
    units.write_text(UNITS_CSV + "510899,某县,4,519999\n", encoding="utf-8")
    done = gateway(db, "import-units", str(units))
    assert done.returncode != 0
    assert "line 13" in done.stderr and "unknown parent_code 519999" in done.stderr
    assert done.stderr.count("\n") == 1


async def test_import_judges_early_warning_once_at_the_end(db: Database, tmp_path: Path) -> None:
    """Alerts of a bulk import are judged after its last batch, over every cell it touched."""
    from datetime import date, timedelta

    from gateway.flags.alerts import list_alerts

    units = tmp_path / "units.csv"
    units.write_text(UNITS_CSV, encoding="utf-8")
    assert gateway(db, "import-units", str(units)).returncode == 0
    start = date(2024, 3, 1)
    lines = [json.dumps(record(f"W-{d}", received_at=f"{start + timedelta(days=d)}T10:00:00+08:00", events=[]))
             for d in range(35)]  # one a day: the normal
    surge_day = start + timedelta(days=34)
    lines += [json.dumps(record(f"S-{i}", received_at=f"{surge_day}T1{i % 10}:00:00+08:00", events=[]))
              for i in range(12)]
    data = tmp_path / "surge.jsonl"
    data.write_text("\n".join(lines) + "\n")
    done = gateway(db, "import", str(data), "--quiet")
    assert done.returncode == 0, done.stderr
    async with db.sessionmaker() as session:
        alerts = await list_alerts(session)
    assert [(a.unit_code, a.category, a.day, a.count) for a in alerts] == [("510802", "FOOD", surge_day, 13)]
