"""The KPI report document (interfaces.md) rendered as CSV, an Excel workbook, or a terminal table.

CSV is for tools: one flat line per row with English column names and unrounded rates, the total last.
The workbook is for people: percentages, Chinese headers above the English names, a bar chart of the
subordinate units' scores, and a sheet stating the report's parameters.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
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


def to_csv(doc: Mapping[str, Any]) -> str:
    """Header, one line per unit row in report order, then the total (`row` = unit | total)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    cols = csv_columns()
    writer.writerow(["row", *(name for name, _ in cols)])
    for kind, row in [*(("unit", r) for r in doc["rows"]), ("total", doc["total"])]:
        writer.writerow([kind, *("" if (v := get(row)) is None else repr(v) if isinstance(v, float) else v
                                 for _, get in cols)])
    return out.getvalue()


def _parameters(doc: Mapping[str, Any], scheme_weights: Mapping[str, float] | None) -> list[tuple[str, str, Any]]:
    unit = doc["unit"]
    weights = ", ".join(f"{k} {v:g}" for k, v in (scheme_weights or {}).items())
    return [
        ("unit", "被评价单位", f"{unit['code']} {unit['name']} (level {unit['level']})"),
        ("level", "评价层级", doc["level"]),
        ("from", "起始日期", doc["from"]),
        ("to", "截止日期", doc["to"]),
        ("as_of", "统计时点", doc["as_of"]),
        ("scheme", "评分方案", f"{doc['scheme']}: {weights}" if weights else doc["scheme"]),
        ("calendar_complete", "工作日历完整", "是 yes" if doc["calendar_complete"] else
         "否 no: some years use Monday–Friday"),
        ("policy_versions", "时限政策版本", ", ".join(doc["policy_versions"]) or "-"),
        ("standard", "统计标准", "kpi.md version 1 (一个标准统计)"),
    ]


def to_xlsx(doc: Mapping[str, Any], scheme_weights: Mapping[str, float] | None = None) -> bytes:
    wb = Workbook()
    ws: Worksheet = wb.worksheets[0]
    ws.title = "报表 Report"
    bold = Font(bold=True)
    head_fill = PatternFill("solid", fgColor="DDEBF7")
    for col, (english, chinese, _, _) in enumerate(PEOPLE_COLUMNS, start=1):
        for row_no, text in ((1, chinese), (2, english)):
            cell = ws.cell(row=row_no, column=col, value=text)
            cell.font, cell.fill = bold, head_fill
            cell.alignment = Alignment(horizontal="center", wrap_text=True)
        ws.column_dimensions[get_column_letter(col)].width = 28 if english == "name" else 14
    rows = list(doc["rows"])
    for r_index, row in enumerate([*rows, doc["total"]], start=3):
        is_total = r_index == len(rows) + 3
        for col, (_, _, get, kind) in enumerate(PEOPLE_COLUMNS, start=1):
            value = get(row)
            if is_total and col == 1:
                value = f"合计 total ({row['unit']['code']})"
            data_cell = ws.cell(row=r_index, column=col, value=value)
            data_cell.number_format = {"pct": "0.00%", "money": "#,##0.00", "score": "0.00"}.get(kind, "General")
            if is_total:
                data_cell.font = bold
    ws.freeze_panes = "C3"

    score_col = next(i for i, c in enumerate(PEOPLE_COLUMNS, start=1) if c[0] == "score")
    if rows:
        chart = BarChart()
        chart.type = "bar"
        chart.title = "下级单位得分 Scores of subordinate units"
        chart.y_axis.title = "得分 score"
        chart.legend = None
        chart.add_data(Reference(ws, min_col=score_col, min_row=2, max_row=len(rows) + 2), titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=2, min_row=3, max_row=len(rows) + 2))
        chart.height, chart.width = max(7.5, 0.6 * len(rows)), 18
        ws.add_chart(chart, f"A{len(rows) + 6}")

    params = wb.create_sheet("参数 Parameters")
    params.append(["参数", "parameter", "value"])
    for col in (1, 2, 3):
        params.cell(row=1, column=col).font = bold
    for english, chinese, value in _parameters(doc, scheme_weights):
        params.append([chinese, english, value])
    params.column_dimensions["A"].width, params.column_dimensions["B"].width = 16, 20
    params.column_dimensions["C"].width = 60
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
