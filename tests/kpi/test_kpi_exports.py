"""CSV, workbook and terminal renderings of a report document."""

from __future__ import annotations

import csv
import io
from typing import Any

from openpyxl import load_workbook

from kpi.exports import to_csv, to_table, to_xlsx
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


def test_csv_has_one_line_per_row_then_the_total() -> None:
    lines = list(csv.DictReader(io.StringIO(to_csv(document()))))
    assert [(r["row"], r["unit_code"]) for r in lines] == [("unit", "510800"), ("unit", "510100"), ("total", "510000")]
    assert lines[0]["timeliness_rate"] == "0.5" and lines[0]["reply_rate"] == "0.5"
    assert lines[0]["timeliness_by_obligation.C_ACCEPT.late"] == "1"
    assert lines[1]["score"] == "" and lines[1]["rank"] == "" and lines[1]["recovered_amount"] == "0.00"
    assert lines[0]["received_by_channel.GOV_HOTLINE_TRANSFER"] == "0"


def test_workbook_for_people() -> None:
    wb = load_workbook(io.BytesIO(to_xlsx(document(), DEFAULT.weights)))
    assert wb.sheetnames == ["报表 Report", "参数 Parameters"]
    ws = wb["报表 Report"]
    headers = {ws.cell(row=2, column=c).value: c for c in range(1, ws.max_column + 1)}
    assert ws.cell(row=1, column=headers["timeliness_rate"]).value == "综合按时率"
    rate = ws.cell(row=3, column=headers["timeliness_rate"])
    assert rate.value == 0.5 and rate.number_format == "0.00%"
    assert ws.cell(row=3, column=headers["name"]).value == "广元市市场监督管理局"
    assert str(ws.cell(row=5, column=1).value).startswith("合计")
    assert len(ws._charts) == 1  # type: ignore[attr-defined]  # the bar chart of subordinate scores
    params = {row[1]: row[2] for row in wb["参数 Parameters"].iter_rows(min_row=2, values_only=True)}
    assert params["policy_versions"] == "order-20"
    assert str(params["calendar_complete"]).startswith("否")
    assert "timeliness_rate 40" in str(params["scheme"])


def test_table_text() -> None:
    text = to_table(document())
    assert "广元市市场监督管理局" in text and "TOTAL" in text and "50.00%" in text
    assert "calendar complete: no" in text
