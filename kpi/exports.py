"""The KPI report document (interfaces.md) rendered as CSV, an Excel workbook, or a terminal table.

CSV is for tools: one flat line per row with English column names and unrounded rates, the total last.
The workbook is for people: one Chinese header row with an autofilter, percentages and thousands separators,
a bar chart of the subordinate units' scores, and a sheet stating the report's parameters and the columns'
machine keys. Both are safe to open: text never runs as a formula (interfaces.md 1.1).
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from kpi.metrics import CHANNELS, HOTLINES, KINDS
from kpi.policies import OBLIGATIONS

Row = Mapping[str, Any]

OBLIGATION_NAMES = {
    "C_ACCEPT": "投诉按时受理率",
    "C_CONCLUDE": "投诉按时办结率",
    "R_DECIDE": "举报按时核查率",
    "R_REPLY": "举报按时告知率",
}
KIND_NAMES = {"COMPLAINT": "投诉", "REPORT": "举报", "INQUIRY": "咨询", "SUGGESTION": "意见建议"}
# The row's `supervision` block (supervision.md): (key, Chinese header, kind)
SUPERVISION_COLUMNS = (
    ("issued", "督办件数", "int"),
    ("responded_on_time", "按时反馈", "int"),
    ("responded_late", "超时反馈", "int"),
    ("overdue", "逾期未反馈", "int"),
    ("rate", "督办按时反馈率", "pct"),
)

def _path(*keys: str) -> Callable[[Row], Any]:
    """A getter for a nested value, e.g. _path("timeliness_by_obligation", "C_ACCEPT", "rate")."""

    def get(row: Row) -> Any:
        value: Any = row
        for key in keys:
            value = value[key]
        return value

    return get


# (English name, Chinese header, value getter, kind) for the people-facing sheet; kind: text|int|pct|money|score
_Column = tuple[str, str, Callable[[Row], Any], str]
PEOPLE_COLUMNS: list[_Column] = [
    ("code", "单位代码", lambda r: r["unit"]["code"], "text"),
    ("name", "单位名称", lambda r: r["unit"]["name"], "text"),
    ("received", "受理总量", lambda r: r["received"], "int"),
    *((k, KIND_NAMES[k], _path("received_by_kind", k), "int") for k in KINDS),
    ("on_time", "按时办理", lambda r: r["on_time"], "int"),
    ("late", "超时办理", lambda r: r["late"], "int"),
    ("overdue", "逾期未办", lambda r: r["overdue"], "int"),
    ("timeliness_rate", "综合按时率", lambda r: r["timeliness_rate"], "pct"),
    *(
        (f"{c}.rate", OBLIGATION_NAMES[c], _path("timeliness_by_obligation", c, "rate"), "pct")
        for c in OBLIGATIONS
    ),
    ("reply_rate", "回复率", lambda r: r["reply_rate"], "pct"),
    ("callback_rate", "回访率", lambda r: r["callback_rate"], "pct"),
    ("satisfaction_rate", "满意率", lambda r: r["satisfaction_rate"], "pct"),
    ("mediation_success_rate", "调解成功率", lambda r: r["mediation_success_rate"], "pct"),
    ("case_filing_rate", "举报立案率", lambda r: r["case_filing_rate"], "pct"),
    ("recovered_amount", "挽回经济损失(元)", lambda r: Decimal(r["recovered_amount"]), "money"),
    *((f"supervision.{k}", name, _path("supervision", k), kind) for k, name, kind in SUPERVISION_COLUMNS),
    ("score", "得分", lambda r: r["score"], "score"),
    ("rank", "排名", lambda r: r["rank"], "int"),
]


# the people-facing column's name in the CSV, where the two differ
CSV_KEYS = {"code": "unit_code", "name": "unit_name",
            **{k: f"received_by_kind.{k}" for k in KINDS},
            **{f"{c}.rate": f"timeliness_by_obligation.{c}.rate" for c in OBLIGATIONS}}
SHANGHAI = ZoneInfo("Asia/Shanghai")


def csv_columns() -> list[tuple[str, Callable[[Row], Any]]]:
    cols: list[tuple[str, Callable[[Row], Any]]] = [
        ("unit_code", lambda r: r["unit"]["code"]),
        ("unit_name", lambda r: r["unit"]["name"]),
        ("unit_level", lambda r: r["unit"]["level"]),
        ("received", lambda r: r["received"]),
    ]
    for group, keys in (("received_by_kind", KINDS), ("received_by_channel", CHANNELS),
                        ("received_by_hotline", HOTLINES)):
        cols += [(f"{group}.{k}", _path(group, k)) for k in keys]
    cols += [(name, _path(name)) for name in ("on_time", "late", "overdue", "timeliness_rate")]
    for code in OBLIGATIONS:
        cols += [
            (f"timeliness_by_obligation.{code}.{f}", _path("timeliness_by_obligation", code, f))
            for f in ("on_time", "late", "overdue", "rate")
        ]
    cols += [
        (name, _path(name))
        for name in ("reply_rate", "callback_rate", "satisfaction_rate", "mediation_success_rate",
                     "case_filing_rate", "recovered_amount")
    ]
    cols += [(f"supervision.{k}", _path("supervision", k)) for k, _, _ in SUPERVISION_COLUMNS]
    cols += [(name, _path(name)) for name in ("score", "rank")]
    return cols


# Exports are safe to open (interfaces.md 1.1): a text cell starting with one of these would be read by a
# spreadsheet as a formula (=, +, -, @) or, after its leading tab/CR is trimmed, as one.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_TEXT_COLUMNS_NUMERIC = {"recovered_amount"}  # text in the document, a number to a reader: never prefixed
BOM = "\ufeff"


def literal_text(value: str) -> str:
    """A CSV text cell as a reader's spreadsheet will take it literally: prefixed with `'` when it starts with
    a formula trigger (=, +, -, @, tab, carriage return); unchanged otherwise."""
    return "'" + value if value.startswith(FORMULA_TRIGGERS) else value


def export_filename(doc: Mapping[str, Any], fmt: str) -> str:
    """The download name of a report: kpi-<unit>-L<level>-<from>-<to>.<fmt> (ASCII: codes and dates only)."""
    return f"kpi-{doc['unit']['code']}-L{doc['level']}-{doc['from']}-{doc['to']}.{fmt}"


def to_csv(doc: Mapping[str, Any]) -> bytes:
    """The report as CSV bytes, the same from REST, CLI and page: UTF-8 with a byte-order mark (Excel opens
    Chinese names right on a double-click); a header of machine keys, one line per unit row in report order,
    then the total (`row` = unit | total); rates unrounded; text cells that could run as formulas prefixed `'`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    cols = csv_columns()
    writer.writerow(["row", *(name for name, _ in cols)])
    for kind, row in [*(("unit", r) for r in doc["rows"]), ("total", doc["total"])]:
        cells: list[Any] = [kind]
        for name, get in cols:
            value = get(row)
            if value is None:
                value = ""
            elif isinstance(value, float):
                value = repr(value)
            elif isinstance(value, str) and name not in _TEXT_COLUMNS_NUMERIC:
                value = literal_text(value)
            cells.append(value)
        writer.writerow(cells)
    return (BOM + out.getvalue()).encode("utf-8")


def _parameters(doc: Mapping[str, Any], scheme_weights: Mapping[str, float] | None) -> list[tuple[str, str, Any]]:
    unit = doc["unit"]
    weights = ", ".join(f"{k} {v:g}" for k, v in (scheme_weights or {}).items())
    as_of = datetime.fromisoformat(doc["as_of"]).astimezone(SHANGHAI)
    return [
        ("unit", "被评价单位", f"{unit['code']} {unit['name']}"),
        ("unit_level", "被评价单位层级", unit["level"]),
        ("level", "评价层级", doc["level"]),
        ("from", "起始日期", date.fromisoformat(doc["from"])),
        ("to", "截止日期", date.fromisoformat(doc["to"])),
        ("as_of", "统计时点（北京时间 UTC+8）", as_of.replace(tzinfo=None)),
        ("scheme", "评分方案", f"{doc['scheme']}: {weights}" if weights else doc["scheme"]),
        ("calendar_complete", "工作日历完整", "是" if doc["calendar_complete"] else
         "否：部分年份无官方节假日安排，按周一至周五计算"),
        ("policy_versions", "时限政策版本", ", ".join(doc["policy_versions"]) or "-"),
        ("standard", "统计标准", "kpi.md version 1 (一个标准统计)"),
    ]


_FORMATS = {"int": "#,##0", "pct": "0.00%", "money": "#,##0.00", "score": "0.00"}


def _put(ws: Worksheet, row: int, col: int, value: Any) -> Any:
    """Write one cell; text is always a literal string (never a formula, whatever it starts with)."""
    cell = ws.cell(row=row, column=col)
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)  # control characters an XLSX file cannot hold
        cell.value = value
        cell.data_type = "s"  # openpyxl would store "=..." as a formula
        if value.startswith(FORMULA_TRIGGERS):
            cell.quotePrefix = True  # and Excel keeps it text when the cell is edited
    else:
        cell.value = value
    return cell


def to_xlsx(doc: Mapping[str, Any], scheme_weights: Mapping[str, float] | None = None) -> bytes:
    """The report as an Excel workbook for people: one header row (Chinese) with an autofilter, one row per
    unit, the total below them; counts with thousands separators, rates as percentages; a chart of the scores
    (or a note when the report is empty); a sheet of the parameters (dates as dates) and of the columns'
    machine keys (the CSV's names)."""
    wb = Workbook()
    ws: Worksheet = wb.worksheets[0]
    ws.title = "报表 Report"
    bold = Font(bold=True)
    head_fill = PatternFill("solid", fgColor="DDEBF7")
    for col, (_, chinese, _, _) in enumerate(PEOPLE_COLUMNS, start=1):
        cell = _put(ws, 1, col, chinese)
        cell.font, cell.fill = bold, head_fill
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        ws.column_dimensions[get_column_letter(col)].width = 28 if col == 2 else 13
    rows = list(doc["rows"])
    last_unit_row = len(rows) + 1
    for r_index, row in enumerate([*rows, doc["total"]], start=2):
        is_total = r_index == last_unit_row + 1
        for col, (english, _, get, kind) in enumerate(PEOPLE_COLUMNS, start=1):
            value = get(row)
            if is_total and english == "name":
                value = f"合计 {row['unit']['name']}"
            cell = _put(ws, r_index, col, value)
            cell.number_format = _FORMATS.get(kind, "General")
            if is_total:
                cell.font = bold
    ws.freeze_panes = "C2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(PEOPLE_COLUMNS))}{max(2, last_unit_row)}"

    empty = not rows or doc["total"]["received"] == 0
    note_row = last_unit_row + 3
    if empty:
        _put(ws, note_row, 1, f"所选期间（{doc['from']} 至 {doc['to']}）内没有受理记录：没有可评价的数据，未绘制图表。")
        ws.cell(row=note_row, column=1).font = bold
    else:
        score_col = next(i for i, c in enumerate(PEOPLE_COLUMNS, start=1) if c[0] == "score")
        chart = BarChart()
        chart.type = "bar"
        chart.title = "下级单位得分"
        chart.y_axis.title = "得分"
        chart.x_axis.title = "单位"
        chart.legend = None
        # openpyxl >= 3.1 marks axes deleted unless told otherwise: they would render without labels
        chart.x_axis.delete = False
        chart.y_axis.delete = False
        scores = [r["score"] for r in rows if r["score"] is not None]
        if scores:  # an axis fitted to the scores: bunched between 85 and 95 they are not bars from 0
            chart.y_axis.scaling.min = max(0, (min(scores) // 5) * 5 - 5)
            chart.y_axis.scaling.max = 100
        chart.y_axis.numFmt = "0"
        chart.add_data(Reference(ws, min_col=score_col, min_row=1, max_row=last_unit_row), titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=2, min_row=2, max_row=last_unit_row))
        chart.height, chart.width = max(7.5, 0.6 * len(rows)), 18
        ws.add_chart(chart, f"A{note_row}")

    params = wb.create_sheet("参数 Parameters")
    for col, text in enumerate(("参数", "key", "值"), start=1):
        _put(params, 1, col, text).font = bold
    for r_index, (english, chinese, value) in enumerate(_parameters(doc, scheme_weights), start=2):
        _put(params, r_index, 1, chinese)
        _put(params, r_index, 2, english)
        cell = _put(params, r_index, 3, value)
        if isinstance(value, datetime):
            cell.number_format = "yyyy-mm-dd hh:mm:ss"
        elif isinstance(value, date):
            cell.number_format = "yyyy-mm-dd"
    start = len(_parameters(doc, scheme_weights)) + 3
    for col, text in enumerate(("报表列", "key（与 CSV 列名相同）"), start=1):
        _put(params, start, col, text).font = bold
    for offset, (english, chinese, _, _) in enumerate(PEOPLE_COLUMNS, start=1):
        _put(params, start + offset, 1, chinese)
        _put(params, start + offset, 2, CSV_KEYS.get(english, english))
    params.column_dimensions["A"].width, params.column_dimensions["B"].width = 26, 36
    params.column_dimensions["C"].width = 50
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, right: bool) -> str:
    gap = " " * max(0, width - _width(text))
    return gap + text if right else text + gap


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def to_table(doc: Mapping[str, Any]) -> str:
    """A plain-text table for a terminal, wide characters measured as two columns."""
    head = ["code", "name", "received", "on_time", "late", "overdue", "timely", "reply", "callback",
            "satisfied", "recovered", "score", "rank"]

    def line(row: Row, label: str | None = None) -> list[str]:
        return [
            label or row["unit"]["code"], row["unit"]["name"], str(row["received"]), str(row["on_time"]),
            str(row["late"]), str(row["overdue"]), _pct(row["timeliness_rate"]), _pct(row["reply_rate"]),
            _pct(row["callback_rate"]), _pct(row["satisfaction_rate"]), row["recovered_amount"],
            "-" if row["score"] is None else f"{row['score']:.2f}", "-" if row["rank"] is None else str(row["rank"]),
        ]

    body = [line(r) for r in doc["rows"]] + [line(doc["total"], "TOTAL")]
    widths = [max(_width(c) for c in col) for col in zip(head, *body, strict=True)]
    unit = doc["unit"]
    lines = [
        f"{unit['name']} ({unit['code']}), level {doc['level']}, {doc['from']} to {doc['to']}, "
        f"as of {doc['as_of']}, scheme {doc['scheme']}",
        f"policy versions: {', '.join(doc['policy_versions']) or '-'}; calendar complete: "
        f"{'yes' if doc['calendar_complete'] else 'no (Monday-Friday used for some years)'}",
        "",
    ]
    for i, cells in enumerate([head, *body]):
        lines.append("  ".join(_pad(c, w, right=n >= 2) for n, (c, w) in enumerate(zip(cells, widths, strict=True))))
        if i == 0 or i == len(body) - 1:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"
