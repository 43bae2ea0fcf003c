"""`/reports`: a plain server-rendered page for evaluators — pick unit, level and period, see the table and a
bar chart of scores, download CSV or Excel. No JavaScript and no front-end build: forms POST the token in the
body (never in a URL, where it would land in logs and browser history), and the server renders HTML.
"""

from __future__ import annotations

import html
from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from gateway.api.auth import SignIn, form_sign_in
from gateway.core.auth import AuthError
from gateway.reports.arguments import report_arguments
from gateway.reports.build import KpiConfigError, ReportError, build_report, load_config
from gateway.units.jurisdiction import caller_sees_unit
from kpi.exports import to_csv, to_xlsx

router = APIRouter()

_STYLE = """
body{font-family:system-ui,"Noto Sans CJK SC",sans-serif;margin:2rem;color:#222;max-width:72rem}
h1{font-size:1.4rem} form.pick{display:flex;flex-wrap:wrap;gap:.8rem;align-items:end;margin-bottom:1.5rem}
label{display:flex;flex-direction:column;font-size:.85rem;gap:.2rem} input,select{padding:.3rem;font-size:1rem}
table{border-collapse:collapse;width:100%;margin:1rem 0;font-size:.9rem}
th,td{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:right} th:first-child,td:first-child{text-align:left}
tr.total td{font-weight:600;border-top:2px solid #888} .error{color:#b00020;font-weight:600}
.downloads{display:flex;gap:.8rem} .bar{fill:#3b6fb6} .label{font-size:12px} .muted{color:#666;font-size:.85rem}
"""


def _page(body: str) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang=zh-CN><head><meta charset=utf-8><title>KPI 考核报告 · 12315 gateway</title>"
        f"<style>{_STYLE}</style></head><body><h1>绩效考核报告 KPI report</h1>{body}</body></html>"
    )


def _form(values: dict[str, str]) -> str:
    v = {k: html.escape(values.get(k, ""), quote=True) for k in ("token", "unit", "level", "from", "to", "as_of")}
    today = date.today()
    v["from"] = v["from"] or f"{today.year}-01-01"
    v["to"] = v["to"] or today.isoformat()
    levels = "".join(
        f"<option value={n}{' selected' if v['level'] == str(n) else ''}>{n} {name}</option>"
        for n, name in ((2, "省 province"), (3, "市 city"), (4, "县 county"), (5, "所 station"))
    )
    return f"""
<form class=pick method=post action=/reports>
  <label>Bearer token (evaluator)<input type=password name=token id=token value="{v['token']}" required></label>
  <label>Unit 单位代码<input name=unit id=unit value="{v['unit']}" required pattern="[0-9]{{6}}([0-9]{{3}})?"></label>
  <label>Level 层级<select name=level id=level><option value="">next level down</option>{levels}</select></label>
  <label>From 起<input type=date name=from id=from value="{v['from']}" required></label>
  <label>To 止<input type=date name=to id=to value="{v['to']}" required></label>
  <label>As of 截至 (optional)<input name=as_of id=as_of value="{v['as_of']}" placeholder="2026-06-30T23:59:59+08:00">
  </label>
  <button type=submit id=show>Show report 查看</button>
</form>"""


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _table(doc: dict[str, Any]) -> str:
    head = ("单位 Unit", "受理量 Received", "按时率 Timeliness", "回复率 Reply", "回访率 Callback",
            "满意率 Satisfaction", "挽回损失 Recovered (CNY)", "得分 Score", "排名 Rank")

    def row(r: dict[str, Any], css: str = "") -> str:
        cells = (
            html.escape(f"{r['unit']['name']} ({r['unit']['code']})"), str(r["received"]), _pct(r["timeliness_rate"]),
            _pct(r["reply_rate"]), _pct(r["callback_rate"]), _pct(r["satisfaction_rate"]),
            html.escape(r["recovered_amount"]), "—" if r["score"] is None else f"{r['score']:.1f}",
            "—" if r["rank"] is None else str(r["rank"]),
        )
        return f"<tr class='{css}'>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"

    rows = "".join(row(r) for r in doc["rows"]) + row(doc["total"], "total")
    return ("<table id=report><thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"
            + rows + "</tbody></table>")


def _chart(doc: dict[str, Any]) -> str:
    """Horizontal bars of the rows' scores, as inline SVG."""
    rows = doc["rows"]
    height = 22 * len(rows) + 10
    bars = []
    for i, r in enumerate(rows):
        score = r["score"] or 0.0
        y = 5 + i * 22
        name = html.escape(r["unit"]["name"])
        bars.append(
            f"<text class=label x=0 y={y + 14}>{name}</text>"
            f"<rect class=bar x=260 y={y} width={score * 5:.1f} height=16><title>{name}: {score:.1f}</title></rect>"
            f"<text class=label x={265 + score * 5:.1f} y={y + 14}>"
            f"{'—' if r['score'] is None else f'{score:.1f}'}</text>"
        )
    return (f"<svg id=scores role=img aria-label='scores by unit' width=820 height={height} "
            f"xmlns='http://www.w3.org/2000/svg'>{''.join(bars)}</svg>")


def _downloads(values: dict[str, str]) -> str:
    hidden = "".join(
        f"<input type=hidden name={k} value=\"{html.escape(values.get(k, ''), quote=True)}\">"
        for k in ("token", "unit", "level", "from", "to", "as_of")
    )
    return "<div class=downloads>" + "".join(
        f"<form method=post action=/reports/download>{hidden}<input type=hidden name=format value={fmt}>"
        f"<button type=submit id=download-{fmt}>Download {label}</button></form>"
        for fmt, label in (("xlsx", "Excel (.xlsx)"), ("csv", "CSV"))
    ) + "</div>"


class PageError(Exception):
    pass


async def _report(request: Request, caller: SignIn, values: dict[str, str]) -> dict[str, Any]:
    if isinstance(caller, AuthError):
        raise PageError(f"Not signed in: {caller}")
    if not caller.has("evaluator"):
        raise PageError("This token has no evaluator role.")
    try:
        arguments = report_arguments(values)
    except ReportError as exc:
        raise PageError(f"Bad input: {exc}") from None
    async with request.app.state.sessionmaker() as session:
        if not await caller_sees_unit(session, caller.unit, values["unit"]):  # the REST API's rule, and answer
            raise PageError(f"Forbidden: unit {values['unit']} is not your unit {caller.unit} nor below it.")
        try:
            return await build_report(session, values["unit"], config=load_config(), **arguments)
        except (ReportError, KpiConfigError) as exc:
            raise PageError(str(exc)) from None


@router.get("/reports", include_in_schema=False)
async def reports_form() -> HTMLResponse:
    return _page(_form({}) + "<p class=muted>Paste an evaluator token (gateway token --roles evaluator).</p>")


@router.post("/reports", include_in_schema=False)
async def reports_show(
    request: Request, caller: SignIn = Depends(form_sign_in), token: str = Form(""), unit: str = Form(""),
    level: str = Form(""), from_: str = Form("", alias="from"), to: str = Form(""), as_of: str = Form(""),
) -> HTMLResponse:
    values = {"token": token, "unit": unit, "level": level, "from": from_, "to": to, "as_of": as_of}
    try:
        doc = await _report(request, caller, values)
    except PageError as exc:
        return HTMLResponse(_page(_form(values) + f"<p class=error id=error>{html.escape(str(exc))}</p>").body,
                            status_code=400)
    summary = (f"<p class=muted>{html.escape(doc['unit']['name'])} · level {doc['level']} · {doc['from']} – "
               f"{doc['to']} · as of {html.escape(doc['as_of'])} · scheme {html.escape(doc['scheme'])} · "
               f"policies {html.escape(', '.join(doc['policy_versions']))} · calendar "
               f"{'complete' if doc['calendar_complete'] else 'INCOMPLETE (Monday–Friday assumed)'}</p>")
    return _page(_form(values) + summary + _downloads(values) + _chart(doc) + _table(doc))


@router.post("/reports/download", include_in_schema=False)
async def reports_download(
    request: Request, caller: SignIn = Depends(form_sign_in), token: str = Form(""), unit: str = Form(""),
    level: str = Form(""), from_: str = Form("", alias="from"), to: str = Form(""), as_of: str = Form(""),
    format: str = Form("csv"),
) -> Response:
    values = {"token": token, "unit": unit, "level": level, "from": from_, "to": to, "as_of": as_of}
    try:
        doc = await _report(request, caller, values)
    except PageError as exc:
        return HTMLResponse(_page(f"<p class=error id=error>{html.escape(str(exc))}</p>").body, status_code=400)
    name = f"kpi-{doc['unit']['code']}-L{doc['level']}-{doc['from']}-{doc['to']}"
    if format == "xlsx":
        weights = load_config().policies.scheme(doc["scheme"]).weights
        return Response(to_xlsx(doc, weights), headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
                        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    return Response(to_csv(doc).encode("utf-8-sig"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
