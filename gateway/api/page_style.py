"""The look shared by the gateway's server-rendered pages (`/reports`, the supervisor's page, sign-in): one
stylesheet, one header with the signed-in caller and a sign-out button. Inline CSS only, nothing from a CDN."""

from __future__ import annotations

import html

from fastapi.responses import HTMLResponse

from gateway.core.auth import Principal

STYLE = """
body{font-family:system-ui,"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:0;color:#222}
header.bar{display:flex;justify-content:space-between;align-items:center;background:#1f4e79;color:#fff;
 padding:.5rem 2rem} header.bar a{color:#fff} header.bar form{display:inline;margin:0}
header.bar button{background:none;border:1px solid #fff;color:#fff;padding:.2rem .6rem;cursor:pointer}
main{margin:1.5rem 2rem;max-width:96rem} h1{font-size:1.4rem} h2{font-size:1.1rem;margin-top:1.5rem}
form.pick{display:flex;flex-wrap:wrap;gap:.8rem;align-items:end;margin-bottom:1rem}
label{display:flex;flex-direction:column;font-size:.85rem;gap:.2rem} input,select{padding:.3rem;font-size:1rem}
button{padding:.35rem .9rem;font-size:1rem;cursor:pointer}
.scroll{overflow-x:auto} table{border-collapse:collapse;margin:1rem 0;font-size:.85rem;white-space:nowrap}
th,td{border-bottom:1px solid #ddd;padding:.3rem .45rem;text-align:right} th{background:#eef3f9;cursor:pointer}
th:first-child,td:first-child{text-align:left;position:sticky;left:0;background:#fff} th:first-child{background:#eef3f9}
tr.total td{font-weight:600;border-top:2px solid #888} th small{display:block;color:#666;font-weight:400}
.error{color:#b00020;font-weight:600} .note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5rem .8rem}
.downloads{display:flex;gap:.8rem;margin:.8rem 0} .muted{color:#555;font-size:.85rem}
svg text{font-size:12px;font-family:inherit} .dot{fill:#1f4e79} .line{fill:none;stroke:#1f4e79;stroke-width:2}
.axis{stroke:#999} .grid{stroke:#e5e5e5} rect.bar{fill:#c0392b}
td.RED{color:#b00020;font-weight:600} td.YELLOW{color:#9a6700;font-weight:600} td.GREEN{color:#2e7d32}
.ok{background:#e8f5e9;border-left:4px solid #2e7d32;padding:.5rem .8rem} textarea{font:inherit;padding:.3rem}
"""


def header(principal: Principal | None, csrf: str = "") -> str:
    """The top bar: product name, and the signed-in caller with a sign-out button."""
    who = ""
    if principal is not None:
        roles = "、".join(sorted(principal.roles)) or "无角色"
        who = (f"<span id=who>{html.escape(principal.sub)} · 单位 {html.escape(principal.unit)} · {html.escape(roles)}"
               f"</span> <form method=post action=/logout><input type=hidden name=csrf value=\"{html.escape(csrf)}\">"
               "<button type=submit id=sign-out>退出登录</button></form>")
    nav = ("<nav><a href=/reports id=nav-reports>绩效考核报告</a> · "
           "<a href=/supervision id=nav-supervision>督办监督</a></nav>") if principal is not None else ""
    return f"<header class=bar><strong>12315 绩效考核与监督</strong>{nav}<span>{who}</span></header>"


def page(title: str, body: str, principal: Principal | None = None, csrf: str = "", status_code: int = 200,
         script: str = "") -> HTMLResponse:
    """A whole page: `body` is trusted HTML (escape what you put in it)."""
    return HTMLResponse(
        "<!doctype html><html lang=zh-CN><head><meta charset=utf-8>"
        f"<meta name=viewport content='width=device-width, initial-scale=1'><title>{html.escape(title)} · 12315</title>"
        f"<style>{STYLE}</style></head><body>{header(principal, csrf)}<main><h1>{html.escape(title)}</h1>{body}</main>"
        f"{f'<script>{script}</script>' if script else ''}</body></html>",
        status_code=status_code,
    )
