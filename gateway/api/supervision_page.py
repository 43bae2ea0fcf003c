"""`/supervision`: the supervisors' page (督办监督), beside `/reports`, server-rendered, in Chinese, offline.

The signed-in supervisor (or evaluator; same sign-in as `/reports`, gateway/api/session.py) picks a unit of
its jurisdiction and sees, as of now:

- the deadline lights (时限预警) per subordinate unit, with the whole subtree last (`deadline_lights`);
- the red and yellow lists with the working days left (`deadline_watch`), each record with a checkbox, and,
  for supervisors, a form to issue a supervision order (督办单) on the selected records (`issue_order`, with
  an idempotency key per rendered form, so a double submit issues one order);
- the orders issued in or touching the unit's subtree and their states (`list_orders`);
- a 环比 chart of the categories that rose most over the last 30 days against the 30 before (`trends`).

Every form posts the session's CSRF token. The domain functions apply the roles and the jurisdiction; the
page only renders what they return and says in Chinese why something was refused.
"""

from __future__ import annotations

import html
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import false, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.api.charts import change_bars
from gateway.api.page_style import page
from gateway.api.reports_page import PageError
from gateway.api.session import CsrfError, SignInRequired, by_bearer, check_csrf, csrf_field, csrf_token, page_principal
from gateway.complaints.models import Complaint
from gateway.core.auth import Principal
from gateway.core.time import SHANGHAI, format_instant
from gateway.reports.facts import kpi_config
from gateway.supervision import analysis
from gateway.supervision.access import SupervisionError
from gateway.supervision.lights import deadline_lights, deadline_watch
from gateway.supervision.orders import issue_order, list_orders
from gateway.units.jurisdiction import jurisdiction_of
from gateway.units.models import OrgUnit
from gateway.units.tree import Unit, jurisdiction_tree

router = APIRouter()

TITLE = "督办监督"
VIEWERS = ("supervisor", "evaluator")
LIST_SIZE = 50  # records per light in the lists; the rest is counted and reachable through deadlineWatch
ORDERS_SHOWN = 20
CHART_DAYS = 30
RISING_SHOWN = 5
OBLIGATION_LABELS = {"C_ACCEPT": "投诉受理", "C_CONCLUDE": "投诉办结", "R_DECIDE": "举报核查", "R_REPLY": "举报告知"}
LIGHT_NAMES = {"RED": "红灯（已逾期）", "YELLOW": "黄灯（临近到期）", "GREEN": "绿灯"}
STATE_NAMES = {"OPEN": "待反馈", "RESPONDED_ON_TIME": "按时反馈", "RESPONDED_LATE": "逾期反馈", "OVERDUE": "逾期未反馈"}
_STATUS = {"FORBIDDEN": 403, "NOT_FOUND": 404, "BAD_USER_INPUT": 400}


def _unit_picker(tree: list[Unit], selected: str) -> str:
    base = tree[0].level
    options = "".join(
        f"<option value={u.code}{' selected' if u.code == selected else ''}>{'　' * (u.level - base)}"
        f"{html.escape(u.name)}（{u.code}）</option>" for u in tree
    )
    return ("<form class=pick method=get action=/supervision><label>单位<select name=unit id=unit>"
            f"{options}</select></label><button type=submit id=show>查看</button></form>")


def _lights(rows: list[Any]) -> str:
    body = "".join(
        f"<tr class={'total' if i == len(rows) - 1 else 'unit'}><td>{html.escape(r.unit.name)}（{r.unit.code}）</td>"
        f"<td class=RED>{r.red}</td><td class=YELLOW>{r.yellow}</td><td class=GREEN>{r.green}</td></tr>"
        for i, r in enumerate(rows)
    )
    return ("<h2>时限预警</h2><div class=scroll><table id=lights><thead><tr><th>单位</th>"
            "<th>红灯 <small>已逾期</small></th><th>黄灯 <small>临近到期</small></th><th>绿灯</th></tr></thead>"
            "<tbody>" + body + "</tbody></table></div>")


def _watch_rows(nodes: list[Any], units: dict[str, tuple[str, str]]) -> str:
    out = []
    for n in nodes:
        code, name = units.get(n.complaint_id, ("", "—"))
        where = f"{html.escape(name)}（{code}）" if code else name
        out.append(
            f"<tr class={n.light}><td><input type=checkbox name=ids value='{html.escape(n.complaint_id)}' "
            f"aria-label='{html.escape(n.complaint_id)}'> {html.escape(n.complaint_id)}</td><td>{where}</td>"
            f"<td>{OBLIGATION_LABELS.get(n.code, n.code)}</td>"
            f"<td>{n.due_date.isoformat()}</td><td class={n.light}>{n.days_left}</td>"
            f"<td class={n.light}>{LIGHT_NAMES[n.light]}</td></tr>"
        )
    return "".join(out)


async def _handling_units(session: AsyncSession, ids: list[str]) -> dict[str, tuple[str, str]]:
    """record id -> (code, name) of its handling unit."""
    if not ids:
        return {}
    found = await session.execute(
        select(Complaint.id, OrgUnit.code, OrgUnit.name).join(OrgUnit, OrgUnit.code == Complaint.handling_unit)
        .where(Complaint.id.in_(ids))
    )
    return {cid: (code, name) for cid, code, name in found.all()}


def _watch(request: Request, principal: Principal, unit: str, pages: dict[str, Any],
           units: dict[str, tuple[str, str]]) -> str:
    rows = "".join(_watch_rows(pages[light].nodes, units) for light in ("RED", "YELLOW"))
    counts = "，".join(f"{LIGHT_NAMES[light]} {total} 项" for light, total in pages["counts"].items())
    head = ("<thead><tr><th>记录编号</th><th>承办单位</th><th>时限</th><th>到期日</th><th>剩余工作日</th><th>灯</th>"
            "</tr></thead>")
    table = (f"<div class=scroll><table id=watch>{head}<tbody>{rows}</tbody></table></div>" if rows
             else "<p class=muted id=watch-empty>没有红灯或黄灯的时限。</p>")
    note = (f"<p class=muted id=watch-counts>{counts}；每种灯显示到期最早的 {LIST_SIZE} 项。</p>")
    if not principal.has("supervisor") or not rows:
        return "<h2>红灯与黄灯</h2>" + note + table
    form = (
        f"<form method=post action=/supervision/issue id=issue-form>{csrf_field(request)}"
        f"<input type=hidden name=unit value={unit}><input type=hidden name=key value={uuid.uuid4().hex}>"
        + table +
        "<div class=pick><label>督办意见<textarea name=note id=note rows=2 cols=60 maxlength=500 required>"
        "请于规定时限内办结并反馈办理情况。</textarea></label><label>反馈时限（工作日）<select name=respond_within "
        "id=respond-within>" + "".join(f"<option{' selected' if d == 3 else ''}>{d}</option>" for d in (1, 2, 3, 5, 10))
        + "</select></label><button type=submit id=issue>对所选记录发督办单</button></div></form>"
    )
    return "<h2>红灯与黄灯</h2>" + note + form


def _orders(orders: list[Any], issuers: dict[str, str], visible: set[str]) -> str:
    if not orders:
        return "<h2>督办单</h2><p class=muted id=orders-empty>还没有督办单。</p>"
    now = datetime.now(UTC)
    body = "".join(
        f"<tr><td>{html.escape(o.id[:8])}</td><td>{html.escape(format_instant(o.issued_at)[:16].replace('T', ' '))}"
        f"</td><td>{html.escape(issuers.get(o.issued_by, o.issued_by))}</td>"
        f"<td>{html.escape('、'.join(c for c in o.complaint_ids if c in visible))}</td>"
        f"<td>{o.due_date.isoformat()}</td><td class=state>{STATE_NAMES[o.state_at(now)]}</td>"
        f"<td>{len(o.responses)}</td><td>{html.escape(o.note)}</td></tr>"
        for o in orders
    )
    return ("<h2>督办单</h2><div class=scroll><table id=orders><thead><tr><th>编号</th><th>发出时间</th>"
            "<th>发出单位</th><th>记录</th><th>反馈期限</th><th>状态</th><th>反馈数</th><th>督办意见</th></tr></thead><tbody>"
            + body + "</tbody></table></div>")


def _rising(report: analysis.TrendReport) -> str:
    rising = sorted((r for r in report.rows if r.change > 0), key=lambda r: (-r.change, r.key))[:RISING_SHOWN]
    label = (f"环比上升最多的类别：{report.date_from} 至 {report.date_to}，"
             f"对比 {report.previous_from} 至 {report.previous_to}")
    return "<h2>环比上升</h2>" + change_bars([(r.label, r.count, r.previous_count, r.change_rate) for r in rising],
                                          label)


async def _render(request: Request, principal: Principal, unit: str) -> str:
    settings = request.app.state.settings
    config = kpi_config(settings.holidays_file, settings.policy_file)
    today = datetime.now(SHANGHAI).date()
    async with request.app.state.sessionmaker() as session:
        lights = await deadline_lights(session, principal, unit, None, None, config, settings.yellow_days)
        pages: dict[str, Any] = {"counts": {}}
        for light in ("RED", "YELLOW"):
            found = await deadline_watch(session, principal, unit, light, None, None, LIST_SIZE, None, config,
                                         settings.yellow_days)
            pages[light] = found
            pages["counts"][light] = await found.total_count(session)
        ids = [n.complaint_id for light in ("RED", "YELLOW") for n in pages[light].nodes]
        units = await _handling_units(session, ids)
        orders = (await list_orders(session, principal, unit, None, ORDERS_SHOWN, None)).orders
        issuers = dict((await session.execute(
            select(OrgUnit.code, OrgUnit.name).where(OrgUnit.code.in_({o.issued_by for o in orders}))
        )).all())
        # An order may cover records of several subordinates: each caller sees only those of its jurisdiction.
        own = await jurisdiction_of(session, principal.unit)
        visible = set((await session.execute(select(Complaint.id).where(
            Complaint.id.in_({cid for o in orders for cid in o.complaint_ids}),
            own.condition(Complaint.ancestor_columns()) if own is not None else false(),
        ))).scalars())
        report = await analysis.trends(session, unit, today - timedelta(days=CHART_DAYS - 1), today, "CATEGORY",
                                       top=analysis.MAX_TOP)
    return (_lights(lights) + _watch(request, principal, unit, pages, units) + _orders(orders, issuers, visible)
            + _rising(report))


# ------------------------------------------------------------------------------------------------ routes


async def _viewer(request: Request) -> Principal:
    principal = await page_principal(request)
    if not any(principal.has(r) for r in VIEWERS):
        raise PageError("您的账号没有督办人员（supervisor）或评价人员（evaluator）角色，不能查看督办页面。", 403)
    return principal


def _refusal(request: Request, exc: Exception) -> Response:
    if isinstance(exc, SignInRequired):
        if by_bearer(request):
            return page(TITLE, f"<p class=error id=error>{html.escape(str(exc))}</p>", status_code=401)
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    status = exc.status if isinstance(exc, PageError) else 403
    return page(TITLE, f"<p class=error id=error>{html.escape(str(exc))}</p><p><a href=/supervision>返回</a></p>",
                status_code=status)


@router.get("/supervision", include_in_schema=False, response_model=None)
async def supervision_page(request: Request) -> Response:
    """The page for the `unit` of the query (default: the caller's own unit)."""
    try:
        principal = await _viewer(request)
    except (SignInRequired, PageError) as exc:
        return _refusal(request, exc)
    async with request.app.state.sessionmaker() as session:
        tree = await jurisdiction_tree(session, principal.unit)
    if not tree:
        return page(TITLE, f"<p class=error id=error>您的单位 {html.escape(principal.unit)} 不在单位目录中，"
                    "请联系管理员导入单位目录。</p>", principal, csrf_token(request), status_code=403)
    unit = request.query_params.get("unit") or principal.unit
    if unit not in {u.code for u in tree}:
        return page(TITLE, _unit_picker(tree, principal.unit) + f"<p class=error id=error>单位 {html.escape(unit)} "
                    "不在您的管辖范围内。</p>", principal, csrf_token(request), status_code=403)
    flash = ""
    issued = request.query_params.get("issued")
    if issued:
        flash = (f"<p class=ok id=issued>已发出督办单 {html.escape(issued[:8])}，反馈期限 "
                 f"{html.escape(request.query_params.get('due', ''))}。</p>")
    try:
        body = await _render(request, principal, unit)
    except SupervisionError as exc:
        body = f"<p class=error id=error>{html.escape(str(exc))}</p>"
    return page(TITLE, _unit_picker(tree, unit) + flash + body, principal, csrf_token(request))


@router.post("/supervision/issue", include_in_schema=False, response_model=None)
async def supervision_issue(request: Request) -> Response:
    """Issue an order on the checked records, then show the page again (post/redirect/get)."""
    form = await request.form()
    try:
        check_csrf(request, str(form.get("csrf", "")))
        principal = await _viewer(request)
    except CsrfError as exc:
        return page(TITLE, f"<p class=error id=error>{html.escape(str(exc))}</p>", status_code=403)
    except (SignInRequired, PageError) as exc:
        return _refusal(request, exc)
    unit = str(form.get("unit") or principal.unit)
    ids = [str(v) for v in form.getlist("ids")]
    if not ids:
        return page(TITLE, "<p class=error id=error>请先勾选要督办的记录。</p>"
                    f"<p><a href='/supervision?{urlencode({'unit': unit})}'>返回</a></p>", principal,
                    csrf_token(request), status_code=400)
    within_text = str(form.get("respond_within") or "3")
    settings = request.app.state.settings
    config = kpi_config(settings.holidays_file, settings.policy_file)
    try:
        async with request.app.state.sessionmaker() as session, session.begin():
            order, _ = await issue_order(session, principal, ids, str(form.get("note") or ""),
                                         int(within_text) if within_text.isdigit() else 0,
                                         f"page-{form.get('key')}" if form.get("key") else None, config.calendar)
    except SupervisionError as exc:
        return page(TITLE, f"<p class=error id=error>未能发出督办单：{html.escape(str(exc))}</p>"
                    f"<p><a href='/supervision?{urlencode({'unit': unit})}'>返回</a></p>", principal,
                    csrf_token(request), status_code=_STATUS.get(exc.code, 400))
    query = urlencode({"unit": unit, "issued": order.id, "due": order.due_date.isoformat()})
    return RedirectResponse(f"/supervision?{query}", status_code=303)
