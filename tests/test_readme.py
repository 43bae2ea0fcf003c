"""The README's example queries are valid against the published schema, it starts with the two commands, and its
examples answer with data against the demo as written."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from graphql import build_schema, parse, validate

ROOT = Path(__file__).resolve().parent.parent


def test_readme_queries_are_valid() -> None:
    schema = build_schema((ROOT / "graphql" / "schema.graphql").read_text(encoding="utf-8"))
    blocks = re.findall(r"```graphql\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 3
    for block in blocks:
        assert [e.message for e in validate(schema, parse(block))] == [], block


def test_readme_starts_with_the_two_commands() -> None:
    head = "\n".join((ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:8])
    assert "make demo" in head and "make test" in head


def demo_block() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- readme-demo-example -->\n```sh\n(.*?)```", text, re.S)
    assert match, "the README lost its demo example"
    return match.group(1)


@pytest.mark.skipif(not shutil.which("curl"), reason="curl not installed")
def test_readme_demo_example_answers_with_data(tmp_path: Path) -> None:
    """`gateway demo` as a user starts it, its printed export lines pasted, the README's block run in bash."""
    port = free_port()
    gateway = str(Path(sys.executable).parent / "gateway")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    demo = subprocess.Popen([gateway, "demo", "--records", "400", "--port", str(port)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        exports: dict[str, str] = {}
        deadline = time.monotonic() + 120
        assert demo.stdout is not None
        for line in demo.stdout:
            if line.strip().startswith("export "):
                name, _, value = line.strip()[len("export "):].partition("=")
                exports[name] = shlex.split(value)[0] if value else ""
            if line.startswith("Try:") or time.monotonic() > deadline:
                break
        assert {"GATEWAY_DATABASE_URL", "GATEWAY_JWT_SECRET", "GATEWAY_INGEST_SECRET", "GATEWAY_URL"} <= set(exports)
        (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)  # the README runs from the checkout
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", demo_block()], cwd=tmp_path, env=env | exports,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        report = json.loads(next(line for line in lines if line.startswith('{"unit"')))
        assert report["total"]["received"] > 0 and sum(r["received"] for r in report["rows"]) > 0
        answer = json.loads(next(line for line in lines if line.startswith('{"data"')))
        assert answer["data"]["kpiReport"]["total"]["received"] == report["total"]["received"]
        rows = list(csv.DictReader(io.StringIO("\n".join(lines[lines.index(next(x for x in lines
                                                                                if "unit_code" in x)):]))))
        total = next(r for r in rows if r.get("\ufeffrow", r.get("row")) == "total")
        assert int(total["received"]) == report["total"]["received"]
        assert (tmp_path / "report.xlsx").stat().st_size > 0
        assert not (tmp_path / "gateway.db").exists()  # the examples used the demo's database, made nothing else
    finally:
        demo.terminate()
        demo.wait(20)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
