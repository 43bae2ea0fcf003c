"""`/reports`: the evaluators' page (评价人员), server-rendered, in Chinese, working offline.

The signed-in evaluator (gateway/api/session.py) picks a unit from the tree of its jurisdiction, a level valid
for it and a period (presets 本月 … 上年度, or dates); the page shows every metric of kpi.md in a sortable,
searchable table (top N for levels with many units), a dot plot of scores on a fitted axis, the month-by-month
timeliness rate, and says in words why a calendar is incomplete. Downloads give the same CSV and Excel files as
the REST API and the CLI (kpi/exports.py). Forms post with the session's CSRF token; a tiny inline script
only sorts, filters and fills dates — the page works without it.
"""

from __future__ import annotations

import html
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from gateway.api.charts import dot_plot, line_chart
from gateway.api.page_style import page
from gateway.api.session import CsrfError, SignInRequired, by_bearer, check_csrf, csrf_token, page_principal
from gateway.core.auth import Principal
from gateway.core.time import SHANGHAI, parse_date, parse_instant
from gateway.reports.build import KpiConfig, KpiConfigError, ReportError, build_report, load_config
from gateway.reports.periods import PRESETS, months, period_range
from gateway.supervision.report import count_orders
from gateway.units.tree import Unit, jurisdiction_tree
from kpi.exports import PEOPLE_COLUMNS, export_filename, to_csv, to_xlsx

router = APIRouter()

LEVEL_NAMES = {1: "总局", 2: "省级", 3: "市级", 4: "县级", 5: "所（基层）"}
TOP_CHOICES = ("10", "20", "50", "100", "all")
DEFAULT_TOP = 50  # levels with hundreds of units show the first 50 by rank unless "all" is picked
MAX_MONTHS = 24  # the monthly chart of a longer period would be unreadable: it is left out, with a note
FIELDS = ("unit", "level", "period", "from", "to", "as_of", "top")


class PageError(Exception):
    """Input the page refuses, with a message for the evaluator (in Chinese)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _today() -> date:
    return datetime.now(SHANGHAI).date()


# ------------------------------------------------------------------------------------------- the form


def _unit_options(tree: list[Unit], selected: str) -> str:
    if not tree:
        return ""
    base = tree[0].level
    return "".join(
        f"<option value={u.code} data-level={u.level}{' selected' if u.code == selected else ''}>"
        f"{'　' * (u.level - base)}{html.escape(u.name)}（{u.code}）</option>"
        for u in tree
    )


def _level_options(tree: list[Unit], selected: str) -> str:
    if not tree:
        return ""
    lowest = tree[0].level + 1
    options = ["<option value=''>下一级（默认）</option>"]
    options += [f"<option value={n}{' selected' if selected == str(n) else ''}>{n} {LEVEL_NAMES[n]}</option>"
                for n in range(lowest, 6)]
    return "".join(options)


def _form(request: Request, tree: list[Unit], v: dict[str, str]) -> str:
    periods = "".join(f"<option value={k}{' selected' if v['period'] == k else ''}>{name}</option>"
                      for k, name in PRESETS.items())
    tops = "".join(f"<option value={t}{' selected' if v['top'] == t else ''}>"
                   f"{'全部' if t == 'all' else '前 ' + t + ' 名'}</option>" for t in TOP_CHOICES)
    e = {k: html.escape(v.get(k, ""), quote=True) for k in FIELDS}
    return f"""
<form class=pick method=post action=/reports id=pick>
  <input type=hidden name=csrf value="{html.escape(csrf_token(request), quote=True)}">
  <label>被评价单位<select name=unit id=unit required>{_unit_options(tree, v['unit'])}</select></label>
  <label>评价层级<select name=level id=level>{_level_options(tree, v['level'])}</select></label>
  <label>统计期间<select name=period id=period><option value=custom>自定义日期</option>{periods}</select></label>
  <label>起始日期<input type=date name=from id=from value="{e['from']}" required></label>
  <label>截止日期<input type=date name=to id=to value="{e['to']}" required></label>
  <label>显示<select name=top id=top><option value=''>自动</option>{tops}</select></label>
  <details><summary class=muted>更多</summary><label>统计时点（可选）<input name=as_of id=as_of value="{e['as_of']}"
    placeholder="2026-06-30T23:59:59+08:00"></label></details>
  <button type=submit id=show>查看报告</button>
</form>"""


_SCRIPT = """
const presets = %s;
const period = document.getElementById('period'), from = document.getElementById('from'),
      to = document.getElementById('to'), unit = document.getElementById('unit'),
      level = document.getElementById('level');
period && period.addEventListener('change', () => {
  const p = presets[period.value]; if (p) { from.value = p[0]; to.value = p[1]; } });
[from, to].forEach(el => el && el.addEventListener('input', () => { period.value = 'custom'; }));
function validLevels() {
  const opt = unit.options[unit.selectedIndex]; if (!opt) return;
  const min = Number(opt.dataset.level) + 1;
  for (const o of level.options) { if (o.value) o.disabled = Number(o.value) < min; }
  if (level.selectedOptions[0] && level.selectedOptions[0].disabled) level.value = '';
}
unit && unit.addEventListener('change', validLevels); unit && validLevels();
const table = document.getElementById('report');
if (table) {
  const body = table.tBodies[0];
  table.querySelectorAll('thead th').forEach((th, col) => th.addEventListener('click', () => {
    const asc = th.dataset.dir !== 'asc'; th.dataset.dir = asc ? 'asc' : 'desc';
    const rows = [...body.querySelectorAll('tr.unit')];
    const key = r => { const v = r.cells[col].dataset.v; return v === undefined ? r.cells[col].textContent : v; };
    rows.sort((a, b) => {
      const x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
      if (x === '' && y !== '') return 1; if (y === '' && x !== '') return -1;
      const c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y), 'zh');
      return asc ? c : -c; });
    rows.forEach(r => body.insertBefore(r, body.querySelector('tr.total')));
  }));
  const search = document.getElementById('search');
  search && search.addEventListener('input', () => {
    const q = search.value.trim();
    body.querySelectorAll('tr.unit').forEach(r => { r.hidden = q !== '' && !r.cells[0].textContent.includes(q); });
  });
}
"""


def _script(today: date) -> str:
    import json

    ranges = {k: [a.isoformat(), b.isoformat()] for k in PRESETS for a, b in [period_range(k, today)]}
    return _SCRIPT % json.dumps(ranges)


# ------------------------------------------------------------------------------------------- input


def _values(form: Any, tree: list[Unit]) -> dict[str, str]:
    v = {k: str(form.get(k, "") or "").strip() for k in FIELDS}
    if not v["unit"] and tree:
        v["unit"] = tree[0].code
    v["period"] = v["period"] or ("custom" if v["from"] or v["to"] else "this_year")
    if v["period"] in PRESETS:
        first, last = period_range(v["period"], _today())
        v["from"], v["to"] = first.isoformat(), last.isoformat()
    return v


def _parse(v: dict[str, str], tree: list[Unit]) -> dict[str, Any]:
    """Checked report parameters, or PageError with what to change."""
    by_code = {u.code: u for u in tree}
    unit = by_code.get(v["unit"])
    if unit is None:
        raise PageError(f"单位 {v['unit']} 不在您的管辖范围内（只能评价本单位及下级单位）。", 403)
    level: int | None = None
    if v["level"]:
        if not v["level"].isdigit() or not unit.level < int(v["level"]) <= 5:
            raise PageError(f"{unit.name}是{LEVEL_NAMES[unit.level]}单位，评价层级应为 {unit.level + 1}–5。")
        level = int(v["level"])
    try:
        date_from = parse_date(v["from"])
        date_to = parse_date(v["to"])
    except ValueError:
        raise PageError("日期格式应为 年-月-日，例如 2026-03-31。") from None
    if date_from > date_to:
        raise PageError(f"起始日期 {date_from} 晚于截止日期 {date_to}。")
    as_of: datetime | None = None
    if v["as_of"]:
        try:
            as_of = parse_instant(v["as_of"])
        except ValueError:
            raise PageError("统计时点格式应为 2026-06-30T23:59:59+08:00（须带时区）。") from None
    return {"unit": unit.code, "level": level, "date_from": date_from, "date_to": date_to, "as_of": as_of}


# ------------------------------------------------------------------------------------------- the report


def _cell(value: Any, kind: str) -> tuple[str, str]:
    """(shown text, sort key) of one value."""
    if value is None:
        return "—", ""
    if kind == "pct":
        return f"{value * 100:.1f}%", repr(value)
    if kind == "money":
        return f"{Decimal(value):,.2f}", str(value)
    if kind == "score":
        return f"{value:.2f}", repr(value)
    if kind == "int":
        return f"{value:,}", str(value)
    return html.escape(str(value)), html.escape(str(value), quote=True)


def _table(doc: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    columns = [c for c in PEOPLE_COLUMNS if c[0] != "code"]

    def tr(row: dict[str, Any], css: str) -> str:
        cells = []
        for english, _, get, kind in columns:
            if english == "name":
                text = f"{html.escape(row['unit']['name'])}（{row['unit']['code']}）"
                if css == "total":
                    text = f"合计 {text}"
                cells.append(f"<td data-v=\"{html.escape(row['unit']['name'], quote=True)}\">{text}</td>")
            else:
                shown, key = _cell(get(row), kind)
                cells.append(f"<td data-v=\"{key}\">{shown}</td>")
        return f"<tr class={css}>{''.join(cells)}</tr>"

    head = "".join(f"<th title='{english}'>{html.escape(chinese)}<small>{english}</small></th>"
                   for english, chinese, _, _ in columns)
    body = "".join(tr(r, "unit") for r in rows) + tr(doc["total"], "total")
    return (f"<div class=scroll><table id=report><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")


def _calendar_note(doc: dict[str, Any], details: dict[str, Any], config: KpiConfig) -> str:
    if doc["calendar_complete"]:
        return ""
    years = "、".join(f"{y} 年" for y in details.get("calendar_fallback_years", []))
    covered = sorted(config.calendar.covered_years)
    upto = f"（节假日日历目前覆盖到 {covered[-1]} 年）" if covered else ""
    return (f"<p class=note id=calendar-note>工作日历不完整：本报告中有办理期限落在 {years}"
            f"（最晚期限 {details.get('last_due', '')}），而这些年份没有官方节假日安排{upto}，"
            "因此按周一至周五计算工作日，相关按时率可能有偏差。"
            "管理员可用 GATEWAY_HOLIDAYS_FILE 补充该年度的节假日。</p>")


async def _monthly(request: Request, params: dict[str, Any], config: KpiConfig) -> str:
    spans = months(params["date_from"], params["date_to"])
    if len(spans) < 2:
        return ""
    if len(spans) > MAX_MONTHS:
        return f"<p class=muted>期间超过 {MAX_MONTHS} 个月，未绘制逐月按时率。</p>"
    points: list[tuple[str, float | None]] = []
    async with request.app.state.sessionmaker() as session:
        for first, last in spans:
            month = await build_report(session, params["unit"], params["level"], first, last, params["as_of"],
                                       None, config=config)
            points.append((f"{first.year}-{first.month:02d}", month["total"]["timeliness_rate"]))
    return "<h2>逐月综合按时率</h2>" + line_chart(points, "所选单位合计的综合按时率，按受理月份")


def _downloads(request: Request, v: dict[str, str]) -> str:
    hidden = "".join(f"<input type=hidden name={k} value=\"{html.escape(v.get(k, ''), quote=True)}\">"
                     for k in ("unit", "level", "from", "to", "as_of"))
    hidden += f"<input type=hidden name=csrf value=\"{html.escape(csrf_token(request), quote=True)}\">"
    return "<div class=downloads>" + "".join(
        f"<form method=post action=/reports/download>{hidden}<input type=hidden name=format value={fmt}>"
        f"<button type=submit id=download-{fmt}>下载 {label}</button></form>"
        for fmt, label in (("xlsx", "Excel 表格"), ("csv", "CSV"))
    ) + "</div>"


async def _render(request: Request, principal: Principal, v: dict[str, str], tree: list[Unit]) -> str:
    params = _parse(v, tree)
    config = load_config()
    details: dict[str, Any] = {}
    async with request.app.state.sessionmaker() as session:
        try:
            doc = await build_report(session, params["unit"], params["level"], params["date_from"],
                                     params["date_to"], params["as_of"], None, config=config, details=details,
                                     orders=count_orders)
        except ReportError as exc:
            raise PageError(f"无法生成报告：{exc}") from None
    v["level"] = str(doc["level"])
    summary = (f"<p class=muted id=summary>{html.escape(doc['unit']['name'])} · 评价{LEVEL_NAMES[doc['level']]}单位"
               f" · {doc['from']} 至 {doc['to']} · 统计时点 {html.escape(doc['as_of'])} · 评分方案 "
               f"{html.escape(doc['scheme'])} · 时限政策 {html.escape('、'.join(doc['policy_versions']) or '—')}</p>")
    note = _calendar_note(doc, details, config)
    if doc["total"]["received"] == 0:
        return (summary + note + f"<p class=note id=empty>所选期间（{doc['from']} 至 {doc['to']}）内，"
                f"{html.escape(doc['unit']['name'])}及下级单位没有受理记录，没有可评价的数据。</p>"
                + _downloads(request, v))
    rows = doc["rows"]
    top = int(v["top"]) if v["top"].isdigit() else None
    if not v["top"] and len(rows) > DEFAULT_TOP:
        top = DEFAULT_TOP
    shown = rows[:top] if top else rows
    more = (f"<p class=muted id=shown>共 {len(rows)} 个单位，按排名显示前 {len(shown)} 个；"
            "在“显示”中选择“全部”可查看所有单位，下载的表格包含全部单位。</p>") if len(shown) < len(rows) else ""
    search = ("<label>查找单位<input type=search id=search placeholder='输入单位名称或代码'></label>"
              if len(rows) > 10 else "")
    scores = dot_plot([(r["unit"]["name"], r["score"]) for r in shown], "得分")
    monthly = await _monthly(request, params, config)
    return (summary + note + _downloads(request, v) + "<h2>得分</h2>" + scores + monthly
            + "<h2>明细（点击表头排序）</h2>" + search + more + _table(doc, shown))


# ------------------------------------------------------------------------------------------- routes


async def _evaluator(request: Request) -> Principal:
    principal = await page_principal(request)
    if not principal.has("evaluator"):
        raise PageError("您的账号没有评价人员（evaluator）角色，不能查看考核报告。请联系管理员开通。", 403)
    return principal


def _refusal(request: Request, exc: Exception) -> Response:
    if isinstance(exc, SignInRequired):
        if by_bearer(request):
            return page("绩效考核报告", f"<p class=error id=error>{html.escape(str(exc))}</p>", status_code=401)
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    status = exc.status if isinstance(exc, PageError) else 403
    return page("绩效考核报告", f"<p class=error id=error>{html.escape(str(exc))}</p>"
                "<p><a href=/reports>返回</a></p>", status_code=status)


async def _tree(request: Request, principal: Principal) -> list[Unit]:
    async with request.app.state.sessionmaker() as session:
        return await jurisdiction_tree(session, principal.unit)


async def _show(request: Request, form: Any) -> Response:
    try:
        principal = await _evaluator(request)
    except (SignInRequired, PageError) as exc:
        return _refusal(request, exc)
    tree = await _tree(request, principal)
    if not tree:
        return page("绩效考核报告", f"<p class=error id=error>您的单位 {html.escape(principal.unit)} 不在单位目录中，"
                    "请联系管理员导入单位目录。</p>", principal, csrf_token(request), status_code=403)
    v = _values(form if form is not None else {}, tree)
    body, status = "", 200
    if form is not None:
        try:
            body = await _render(request, principal, v, tree)
        except PageError as exc:
            body, status = f"<p class=error id=error>{html.escape(str(exc))}</p>", exc.status
        except KpiConfigError as exc:
            body, status = f"<p class=error id=error>考核配置有误：{html.escape(str(exc))}</p>", 500
    return page("绩效考核报告", _form(request, tree, v) + body, principal, csrf_token(request), status,
                script=_script(_today()))


@router.get("/reports", include_in_schema=False, response_model=None)
async def reports_form(request: Request) -> Response:
    """The form; with `unit`/`from`/`to`/`period` in the query (a bookmark), the report too."""
    query = request.query_params
    return await _show(request, query if {"unit", "period", "from"} & set(query) else None)


@router.post("/reports", include_in_schema=False, response_model=None)
async def reports_show(request: Request) -> Response:
    form = await request.form()
    try:
        check_csrf(request, str(form.get("csrf", "")))
    except CsrfError as exc:
        return page("绩效考核报告", f"<p class=error id=error>{html.escape(str(exc))}</p>"
                    "<p><a href=/reports>返回</a></p>", status_code=403)
    return await _show(request, form)


@router.post("/reports/download", include_in_schema=False, response_model=None)
async def reports_download(request: Request) -> Response:
    form = await request.form()
    try:
        check_csrf(request, str(form.get("csrf", "")))
        principal = await _evaluator(request)
    except CsrfError as exc:
        return page("绩效考核报告", f"<p class=error id=error>{html.escape(str(exc))}</p>", status_code=403)
    except (SignInRequired, PageError) as exc:
        return _refusal(request, exc)
    tree = await _tree(request, principal)
    v = {k: str(form.get(k, "") or "").strip() for k in FIELDS}
    try:
        params = _parse(v, tree)
        config = load_config()
        async with request.app.state.sessionmaker() as session:
            doc = await build_report(session, params["unit"], params["level"], params["date_from"],
                                     params["date_to"], params["as_of"], None, config=config,
                                     orders=count_orders)
    except PageError as exc:
        return _refusal(request, exc)
    except ReportError as exc:
        return _refusal(request, PageError(f"无法生成报告：{exc}"))
    fmt = "xlsx" if form.get("format") == "xlsx" else "csv"
    name = export_filename(doc, fmt)
    if fmt == "xlsx":
        weights = config.policies.scheme(doc["scheme"]).weights
        return Response(to_xlsx(doc, weights), headers={"Content-Disposition": f'attachment; filename="{name}"'},
                        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    return Response(to_csv(doc), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


