"""Trends and series as documents: JSON (snake_case, like the KPI report's), CSV and an Excel workbook.

CSV is UTF-8 with a byte-order mark, so Excel opens the Chinese labels on a double-click; in CSV and XLSX a
text cell that a spreadsheet would read as a formula (=, +, -, @, tab, carriage return first) is written as
literal text (interfaces.md, "Exports are safe to open").
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from openpyxl import Workbook
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.styles import Font, PatternFill

from gateway.supervision.analysis import ReportUnit, SeriesPoint, TrendReport, TrendRow

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
TREND_COLUMNS = ("key", "label", "count", "previous_count", "change", "change_rate")
TREND_HEADERS = ("代码", "名称", "本期", "对比期", "增减", "增减率")


def _row(row: TrendRow) -> dict[str, Any]:
    return {"key": row.key, "label": row.label, "count": row.count, "previous_count": row.previous_count,
            "change": row.change, "change_rate": row.change_rate}


def _unit(unit: ReportUnit) -> dict[str, Any]:
    return {"code": unit.code, "name": unit.name, "level": unit.level}


def trend_document(report: TrendReport) -> dict[str, Any]:
    """The JSON document of `GET /api/v1/analysis/trends`."""
    return {
        "unit": _unit(report.unit), "by": report.by, "compare_with": report.compare_with,
        "from": report.date_from.isoformat(), "to": report.date_to.isoformat(),
        "previous_from": report.previous_from.isoformat(), "previous_to": report.previous_to.isoformat(),
        "total": _row(report.total), "rows": [_row(r) for r in report.rows],
    }


def series_document(unit: ReportUnit, date_from: date, date_to: date, interval: str,
                    points: Sequence[SeriesPoint]) -> dict[str, Any]:
    """The JSON document of `GET /api/v1/analysis/series`."""
    return {
        "unit": _unit(unit), "interval": interval, "from": date_from.isoformat(), "to": date_to.isoformat(),
        "points": [{"start": p.start.isoformat(), "count": p.count} for p in points],
    }


def literal(value: Any, prefix: str = "'") -> Any:
    """A text cell a spreadsheet must not read as a formula, made literal; other values as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return prefix + value
    return value


def _csv(header: Sequence[str], lines: Iterable[Sequence[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for line in lines:
        writer.writerow(["" if v is None else repr(v) if isinstance(v, float) else literal(v) for v in line])
    return out.getvalue().encode("utf-8-sig")


def trends_csv(doc: Mapping[str, Any]) -> bytes:
    """Header, one line per row in order, then the total (`row` = key | total)."""
    lines = [("key", *(r[c] for c in TREND_COLUMNS)) for r in doc["rows"]]
    lines.append(("total", *(doc["total"][c] for c in TREND_COLUMNS)))
    return _csv(("row", *TREND_COLUMNS), lines)


def series_csv(doc: Mapping[str, Any]) -> bytes:
    return _csv(("start", "count"), ((p["start"], p["count"]) for p in doc["points"]))


def _sheet_header(ws: Any, chinese: Sequence[str], english: Sequence[str]) -> None:
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    for col, (zh, en) in enumerate(zip(chinese, english, strict=True), start=1):
        for row_no, text in ((1, zh), (2, en)):
            cell = ws.cell(row=row_no, column=col, value=text)
            cell.font, cell.fill = bold, fill
        ws.column_dimensions[chr(64 + col)].width = 30 if en == "label" else 14


def _parameters(wb: Workbook, pairs: Sequence[tuple[str, str, Any]]) -> None:
    params = wb.create_sheet("参数 Parameters")
    params.append(["参数", "parameter", "value"])
    for chinese, english, value in pairs:
        params.append([chinese, english, literal(value, "")])
    for col in ("A", "B", "C"):
        params[f"{col}1"].font = Font(bold=True)
    params.column_dimensions["C"].width = 50


def _save(wb: Workbook) -> bytes:
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _text_cell(ws: Any, row: int, col: int, value: Any) -> None:
    cell = ws.cell(row=row, column=col, value=value)
    if isinstance(value, str):
        cell.data_type = "s"  # stored as a string, never as a formula, whatever it starts with


def trends_xlsx(doc: Mapping[str, Any]) -> bytes:
    """Rows and total with Chinese headers, change rates as percentages, a bar chart of the changes."""
    wb = Workbook()
    ws = wb.worksheets[0]
    ws.title = "趋势 Trends"
    _sheet_header(ws, TREND_HEADERS, TREND_COLUMNS)
    rows = list(doc["rows"])
    for r_index, row in enumerate([*rows, {**doc["total"], "label": "合计 total"}], start=3):
        for col, name in enumerate(TREND_COLUMNS, start=1):
            _text_cell(ws, r_index, col, row[name])
            if name == "change_rate":
                ws.cell(row=r_index, column=col).number_format = "0.0%"
        if r_index == len(rows) + 3:
            for col in range(1, len(TREND_COLUMNS) + 1):
                ws.cell(row=r_index, column=col).font = Font(bold=True)
    ws.freeze_panes = "C3"
    if rows:
        chart = BarChart()
        chart.type = "bar"
        chart.title = "增减 Change against the compared period"
        chart.legend = None
        chart.add_data(Reference(ws, min_col=5, min_row=2, max_row=len(rows) + 2), titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=2, min_row=3, max_row=len(rows) + 2))
        chart.height, chart.width = max(7.5, 0.6 * len(rows)), 18
        ws.add_chart(chart, f"H{3}")
    unit = doc["unit"]
    _parameters(wb, [
        ("单位", "unit", f"{unit['code']} {unit['name']} (level {unit['level']})"),
        ("维度", "by", doc["by"]), ("对比方式", "compare_with", doc["compare_with"]),
        ("本期", "period", f"{doc['from']} – {doc['to']}"),
        ("对比期", "previous period", f"{doc['previous_from']} – {doc['previous_to']}"),
        ("标准", "standard", "supervision.md version 1.1 (分析研判)"),
    ])
    return _save(wb)


def series_xlsx(doc: Mapping[str, Any]) -> bytes:
    """One line per point and a line chart of the counts."""
    wb = Workbook()
    ws = wb.worksheets[0]
    ws.title = "走势 Series"
    _sheet_header(ws, ("起始日", "数量"), ("start", "count"))
    points = list(doc["points"])
    for r_index, p in enumerate(points, start=3):
        _text_cell(ws, r_index, 1, p["start"])
        ws.cell(row=r_index, column=2, value=p["count"])
    if points:
        chart = LineChart()
        chart.title = "数量 Records received"
        chart.legend = None
        chart.add_data(Reference(ws, min_col=2, min_row=2, max_row=len(points) + 2), titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=1, min_row=3, max_row=len(points) + 2))
        ws.add_chart(chart, "D3")
    unit = doc["unit"]
    _parameters(wb, [
        ("单位", "unit", f"{unit['code']} {unit['name']} (level {unit['level']})"),
        ("间隔", "interval", doc["interval"]), ("期间", "period", f"{doc['from']} – {doc['to']}"),
        ("标准", "standard", "supervision.md version 1.1 (分析研判)"),
    ])
    return _save(wb)
