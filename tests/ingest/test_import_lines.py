"""`gateway import` on lines that break: the file's line number and the real position in it, and a rejects
file that stays readable when a line is huge. Real subprocesses, both databases."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.ingest.importer import RAW_MAX
from tests.conftest import Database
from tests.factories import load_units, record


def gateway(db: Database, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True,
                          env=db.env(), timeout=180)


def text(rid: str, **fields: object) -> str:
    return json.dumps(record(rid, **fields), ensure_ascii=False)


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
async def test_a_truncated_line_is_reported_at_its_line_and_column(db: Database, tmp_path: Path,
                                                                   newline: str) -> None:
    """The issue's example: line 7 cut short used to read "at line 2 column 0"."""
    await load_units(db.sessionmaker)
    lines = [text(f"T-{i}") for i in range(10)]
    cut = lines[6][:100]
    lines[6] = cut
    path = tmp_path / "records.jsonl"
    path.write_bytes((newline.join(lines) + newline).encode())
    rejects = tmp_path / "rejects.jsonl"
    done = gateway(db, "import", str(path), "--rejects", str(rejects), "--quiet")
    assert done.returncode == 1 and "stored 9" in done.stdout
    assert f"line 7: not valid JSON at column {len(cut) + 1}: unexpected end of data" in done.stderr
    assert "line 2" not in done.stderr
    [written] = [json.loads(x) for x in rejects.read_text(encoding="utf-8").splitlines()]
    assert written["line"] == 7 and written["raw"] == cut and "raw_truncated" not in written


@pytest.mark.parametrize(("line", "column", "says"), [
    ('{"id": "A", "kind": }', 21, "unexpected character"),
    ('{"id": "中文", x}', 14, "unexpected character"),  # columns count characters, not bytes
    ('{"id": "A"} trailing', 13, "unexpected content after document"),
    ("[" * 2000 + "]" * 2000, 1026, "nests too deep"),
])
async def test_the_position_is_the_real_one(db: Database, tmp_path: Path, line: str, column: int,
                                            says: str) -> None:
    await load_units(db.sessionmaker)
    path = tmp_path / "records.jsonl.gz"
    path.write_bytes(gzip.compress((text("G-1") + "\n\n" + line + "\n").encode()))
    done = gateway(db, "import", str(path), "--quiet")
    assert done.returncode == 1 and "stored 1" in done.stdout
    assert f"line 3: not valid JSON at column {column}: {says}" in done.stderr, done.stderr


async def test_invalid_utf8_is_placed_where_it_is(db: Database, tmp_path: Path) -> None:
    await load_units(db.sessionmaker)
    path = tmp_path / "records.jsonl"
    good = text("U-1").encode()
    bad = text("U-2", summary="ab").encode().replace(b'"ab"', b'"a\xffb"')
    path.write_bytes(good + b"\n" + bad + b"\n")
    rejects = tmp_path / "rejects.jsonl"
    done = gateway(db, "import", str(path), "--rejects", str(rejects), "--quiet")
    column = len(bad[: bad.index(b"\xff")].decode()) + 1
    assert done.returncode == 1 and f"line 2: not valid JSON at column {column}: not valid UTF-8" in done.stderr
    [written] = [json.loads(x) for x in rejects.read_text(encoding="utf-8").splitlines()]
    assert "\ufffd" in written["raw"]


async def test_a_huge_line_is_cut_in_the_rejects_file_and_says_so(db: Database, tmp_path: Path) -> None:
    await load_units(db.sessionmaker)
    huge = text("H-1", summary="长" * (10 * 1024 * 1024 // 3))  # over 10 MB, and over 4000 characters
    path = tmp_path / "records.jsonl"
    path.write_text(text("H-0") + "\n" + huge + "\n" + text("H-2") + "\n", encoding="utf-8")
    rejects = tmp_path / "rejects.jsonl"
    done = gateway(db, "import", str(path), "--rejects", str(rejects), "--quiet")
    assert done.returncode == 1 and "stored 2" in done.stdout
    assert "line 2: summary: String should have at most 4000 characters" in done.stderr
    assert rejects.stat().st_size < 2 * RAW_MAX
    [written] = [json.loads(x) for x in rejects.read_text(encoding="utf-8").splitlines()]
    assert written["line"] == 2 and written["id"] == "H-1" and written["raw_truncated"] is True
    assert written["raw_bytes"] == len(huge.encode())
    assert huge.startswith(written["raw"]) and len(written["raw"].encode()) <= RAW_MAX


async def test_a_byte_order_mark_before_the_first_line_is_not_the_record(db: Database, tmp_path: Path) -> None:
    await load_units(db.sessionmaker)
    path = tmp_path / "records.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + text("B-1").encode() + b"\n" + b"\xef\xbb\xbf" + text("B-2").encode() + b"\n")
    done = gateway(db, "import", str(path), "--quiet")
    assert done.returncode == 1 and "stored 1" in done.stdout  # only the first line's mark is forgiven
    assert "line 2: not valid JSON at column 1" in done.stderr
