"""The simulators keep the contract too: the data they generate, their own refusals, their command line;
and the package keeps the rule of direction (connectors never imports gateway)."""

from __future__ import annotations

import ast
import random
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from stdnum.cn import uscc as stdnum_uscc

from connectors.simulators import enterprise_for, generate_records, make_uscc, sample_handling_units
from connectors.simulators.complaints import decode_cursor, encode_cursor
from gateway.complaints.records import validate_record
from tests.connectors.conftest import TOKEN, Sim

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_connectors_never_import_gateway() -> None:
    root = Path(__file__).resolve().parents[2] / "connectors"
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n == "gateway" or n.startswith("gateway.") for n in names), path


def test_generated_records_pass_the_gateway_validation() -> None:
    records = generate_records(3000, seed=5)
    units = set(sample_handling_units())
    for rec in records:
        validate_record(rec)
        assert rec["handling_unit"] in units
    assert len({r["id"] for r in records}) == 3000
    assert generate_records(100, seed=5) == generate_records(100, seed=5)
    kinds = {r["kind"] for r in records}
    assert kinds == {"COMPLAINT", "REPORT", "INQUIRY", "SUGGESTION"}
    assert any(e["type"] == "CASE_FILED" for r in records for e in r["events"])


def test_uscc_and_enterprises() -> None:
    rng = random.Random(1)
    codes = [make_uscc(rng, "510104") for _ in range(500)]
    assert all(stdnum_uscc.is_valid(c) and c[2:8] == "510104" for c in codes)
    assert enterprise_for(codes[0]) == enterprise_for(codes[0])
    assert enterprise_for(codes[0])["registration_authority"] == "510104"


def test_cursor_round_trip() -> None:
    assert decode_cursor(encode_cursor(12345)) == 12345
    with pytest.raises(ValueError):
        decode_cursor("garbage!")


def test_simulators_refuse_what_the_contract_refuses(sims: dict[str, Sim]) -> None:
    with httpx.Client(headers=AUTH, timeout=5) as http:
        ids = ",".join(f"X{i}" for i in range(101))
        assert http.get(f"{sims['enforcement'].url}/api/v1/cases?ids={ids}").status_code == 400
        assert http.get(f"{sims['enforcement'].url}/api/v1/cases").status_code == 400
        assert http.get(f"{sims['complaints'].url}/api/v1/complaints/changes?cursor=zz").status_code == 400
        assert http.get(f"{sims['complaints'].url}/api/v1/complaints/changes?limit=1001").status_code == 422
        flag_url = f"{sims['credit'].url}/api/v1/complaint-flags"
        assert http.post(flag_url, json={"flag_id": "x"}).status_code == 400  # no Idempotency-Key
        body = {"source": "12315", "complaint_ids": ["C1"], "category": "FOOD", "urgency": "CRITICAL",
                "unit_code": "510802", "summary": "s", "reported_at": "2024-05-01T10:00:00+08:00"}
        url = f"{sims['emergency'].url}/api/v1/incidents"
        assert http.post(url, json=body, headers={"Idempotency-Key": "k-1"}).status_code == 201
        assert http.post(url, json=body, headers={"Idempotency-Key": "k-1"}).status_code == 200
        changed = {**body, "summary": "other"}
        assert http.post(url, json=changed, headers={"Idempotency-Key": "k-1"}).status_code == 409
    assert httpx.get(f"{sims['credit'].url}/api/v1/enterprises?uscc=91110000600037341L").status_code == 401


def _free_ports(n: int) -> int:
    for _ in range(50):
        base = random.randrange(20000, 60000)
        try:
            socks = []
            for port in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free ports")


def test_command_line_all_systems() -> None:
    base = _free_ports(4)
    cmd = [sys.executable, "-m", "connectors.simulators", "all", "--base-port", str(base), "--token", "t",
           "--records", "50", "--error-rate", "1", "--error-status", "502"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        urls = dict(proc.stdout.readline().split() for _ in range(4))
        assert urls["emergency"] == f"http://127.0.0.1:{base + 3}"
        with httpx.Client(headers={"Authorization": "Bearer t"}, timeout=5) as http:
            assert http.get(f"{urls['complaints']}/api/v1/complaints/changes").status_code == 502
            http.post(f"{urls['complaints']}/_sim/faults", json={}).raise_for_status()
            page = http.get(f"{urls['complaints']}/api/v1/complaints/changes?limit=1000").json()
            assert len(page["items"]) == 50 and page["has_more"] is False
    finally:
        proc.terminate()
        proc.wait(10)
