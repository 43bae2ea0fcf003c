"""Who is calling a web page: sign-in, the session cookie, CSRF, sign-out (interfaces.md 1.1, docs/sign-in.md).

One place for the principal of the pages (`/reports`, the supervisor's page): `page_principal` is the FastAPI
dependency they use. A caller is known by, in order:

1. an `Authorization: Bearer` token (tools; no cookie, so no CSRF check is needed);
2. the signed session cookie set by `/auth/callback` after OpenID Connect sign-in (authorization code with
   PKCE, via Authlib) — or, where `GATEWAY_OIDC_ISSUER` is unset (demo, development), by `POST /login` with a
   pasted bearer token.

The cookie is signed (itsdangerous, key derived from `GATEWAY_JWT_SECRET`), HttpOnly, SameSite=Lax, Secure when
the request came over TLS (directly or through a proxy whose X-Forwarded-Proto uvicorn trusts), and expires
after `GATEWAY_SESSION_MAX_AGE_S`. Every form post carries the session's CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.api.auth import authenticate
from gateway.api.page_style import page
from gateway.core.auth import ROLES, AuthError, Principal, bearer_token
from gateway.core.settings import Settings

log = logging.getLogger(__name__)
router = APIRouter()

COOKIE = "gateway_session"
_KEY = "principal"  # session key of the signed-in caller: {"sub", "unit", "roles", "exp", "id_token"?}
_CSRF = "csrf"


class SignInRequired(Exception):
    """No principal: a page answers with its sign-in prompt (or 401 for a tool)."""


class CsrfError(Exception):
    """A form post without the session's CSRF token: 403."""


# ------------------------------------------------------------------------------------------- the cookie


def session_key(settings: Settings) -> str:
    """The cookie signing key: derived from GATEWAY_JWT_SECRET, so there is no second secret to manage."""
    secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else ""
    if not secret:  # no secret, no sessions: nobody can sign in (every page says so)
        return secrets.token_hex(32)
    return hmac.new(secret.encode(), b"gateway session cookie v1", hashlib.sha256).hexdigest()


class SessionCookies:
    """Starlette's signed-cookie sessions, with the Secure flag chosen per request (TLS or not)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        options: dict[str, Any] = {"secret_key": session_key(settings), "session_cookie": COOKIE,
                                   "max_age": settings.session_max_age_s, "same_site": "lax"}
        self.plain = SessionMiddleware(app, https_only=False, **options)
        self.secure = SessionMiddleware(app, https_only=True, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tls = scope.get("scheme") in ("https", "wss")
        await (self.secure if tls else self.plain)(scope, receive, send)


def install(app: Any, settings: Settings) -> None:
    """Add the session middleware and the /login, /auth/callback and /logout routes."""
    app.add_middleware(SessionCookies, settings=settings)
    app.include_router(router)


# ------------------------------------------------------------------------------------------- the principal


def _session_principal(request: Request) -> Principal | None:
    data = request.session.get(_KEY)
    if not isinstance(data, dict):
        return None
    if data.get("exp", 0) < time.time():
        request.session.pop(_KEY, None)
        return None
    return Principal(str(data["sub"]), str(data["unit"]), frozenset(data.get("roles", [])))


def current_principal(request: Request) -> Principal | None:
    """The caller: bearer token first (checked as every edge checks it, gateway.api.auth), then the session;
    None when neither. Raises AuthError on a bad token."""
    if request.headers.get("authorization"):
        return authenticate(request.app.state.settings, bearer_token(request.headers["authorization"]))
    return _session_principal(request)


async def page_principal(request: Request) -> Principal:
    """FastAPI dependency of the pages: the signed-in caller, or SignInRequired (the page shows its prompt)."""
    try:
        principal = current_principal(request)
    except AuthError as exc:
        raise SignInRequired(f"令牌无效：{exc}") from None
    if principal is None:
        raise SignInRequired("请先登录。")
    return principal


def by_bearer(request: Request) -> bool:
    return bool(request.headers.get("authorization"))


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use); every form of a page carries it as `csrf`."""
    token = request.session.get(_CSRF)
    if not isinstance(token, str):
        token = request.session[_CSRF] = secrets.token_urlsafe(32)
    return token


def check_csrf(request: Request, submitted: str | None) -> None:
    """Refuse a form post whose `csrf` field is not the session's token (bearer callers carry no cookie)."""
    if by_bearer(request):
        return
    expected = request.session.get(_CSRF)
    if not (isinstance(expected, str) and submitted and hmac.compare_digest(expected, submitted)):
        raise CsrfError("表单已过期或来源不明（CSRF 校验失败），请刷新页面后重试。")


def csrf_field(request: Request) -> str:
    return f'<input type=hidden name=csrf value="{html.escape(csrf_token(request), quote=True)}">'


def _start_session(request: Request, principal: Principal, id_token: str | None = None) -> None:
    request.session.clear()  # a new session on sign-in: nothing carried over from before (session fixation)
    settings: Settings = request.app.state.settings
    data: dict[str, Any] = {"sub": principal.sub, "unit": principal.unit, "roles": sorted(principal.roles),
                            "exp": int(time.time()) + settings.session_max_age_s}
    if id_token:
        data["id_token"] = id_token
    request.session[_KEY] = data
    csrf_token(request)


def _safe_next(target: str | None) -> str:
    """Only same-site paths are followed after sign-in (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/reports"


# ------------------------------------------------------------------------------------------- OpenID Connect


def oidc_enabled(settings: Settings) -> bool:
    return bool(settings.oidc_issuer and settings.oidc_client_id)


def _oidc_client(request: Request) -> Any:
    """The Authlib client of the identity platform, made once per application (it caches the discovery)."""
    app = request.app
    client = getattr(app.state, "oidc_client", None)
    if client is None:
        from authlib.integrations.starlette_client import OAuth

        settings: Settings = app.state.settings
        oauth = OAuth()
        client = oauth.register(
            "idp",
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None,
            server_metadata_url=f"{(settings.oidc_issuer or '').rstrip('/')}/.well-known/openid-configuration",
            client_kwargs={"scope": settings.oidc_scope, "code_challenge_method": "S256"},
        )
        app.state.oidc_client = client
    return client


def principal_from_claims(settings: Settings, claims: dict[str, Any]) -> Principal:
    """The caller named by an ID token: `sub`, the unit claim, the roles claim (a list or a space-separated
    string; roles the gateway does not know are dropped). Raises AuthError when a claim is missing."""
    unit = claims.get(settings.oidc_unit_claim)
    if not isinstance(unit, str) or not unit:
        raise AuthError(f"身份令牌缺少单位声明 “{settings.oidc_unit_claim}”（GATEWAY_OIDC_UNIT_CLAIM）")
    raw = claims.get(settings.oidc_roles_claim, [])
    roles = raw.split() if isinstance(raw, str) else raw if isinstance(raw, list) else []
    known = frozenset(r for r in roles if isinstance(r, str) and r in ROLES)
    return Principal(str(claims.get("sub", "")), unit, known)


def _message_page(title: str, message: str, status: int, action: str = "") -> HTMLResponse:
    return page(title, f"<p class=error id=error>{html.escape(message)}</p>{action}", status_code=status)


@router.get("/login", include_in_schema=False, response_model=None)
async def login(request: Request, next: str | None = None) -> Response:
    """Start sign-in: to the identity platform (PKCE), or the token form where OIDC is off."""
    settings: Settings = request.app.state.settings
    target = _safe_next(next)
    if oidc_enabled(settings):
        request.session["next"] = target
        try:
            client = _oidc_client(request)
            return await client.authorize_redirect(request, str(request.url_for("auth_callback")))  # type: ignore
        except Exception as exc:  # the identity platform is unreachable or misconfigured: say so, in words
            log.warning("OIDC sign-in could not start: %s", exc)
            return _message_page("无法登录", f"统一身份认证平台暂时无法访问（{type(exc).__name__}），请稍后再试。", 502)
    body = (
        "<p>未配置统一身份认证（GATEWAY_OIDC_ISSUER）。请粘贴评价人员令牌登录"
        "（由管理员用 <code>gateway token --roles evaluator</code> 签发）。</p>"
        f"<form method=post action=/login class=pick>{csrf_field(request)}"
        f"<input type=hidden name=next value=\"{html.escape(target, quote=True)}\">"
        "<label>令牌 Bearer token<input type=password name=token id=token required></label>"
        "<button type=submit id=sign-in>登录 Sign in</button></form>"
    )
    return page("登录 Sign in", body)


@router.post("/login", include_in_schema=False, response_model=None)
async def login_with_token(request: Request, token: str = Form(""), next: str = Form(""),
                           csrf: str = Form("")) -> Response:
    """Where OIDC is off: a pasted bearer token starts a session (the same session OIDC gives)."""
    settings: Settings = request.app.state.settings
    if oidc_enabled(settings):
        return _message_page("无法登录", "已配置统一身份认证，请通过 /login 登录。", 400)
    try:
        check_csrf(request, csrf)
        principal = authenticate(settings, token.strip())
    except CsrfError as exc:
        return _message_page("无法登录", str(exc), 403, "<p><a href=/login>重新登录</a></p>")
    except AuthError as exc:
        return _message_page("无法登录", f"令牌无效或已过期（{exc}）。", 401, "<p><a href=/login>重新登录</a></p>")
    _start_session(request, principal)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.get("/auth/callback", include_in_schema=False, name="auth_callback", response_model=None)
async def auth_callback(request: Request) -> Response:
    """End the authorization-code flow: code + PKCE verifier for tokens, the ID token checked, a new session."""
    settings: Settings = request.app.state.settings
    if not oidc_enabled(settings):
        return _message_page("无法登录", "未配置统一身份认证。", 404)
    from authlib.integrations.base_client import OAuthError

    target = _safe_next(request.session.get("next"))
    try:
        token = await _oidc_client(request).authorize_access_token(request)
        claims = token.get("userinfo") or {}
        if not claims:
            raise AuthError("身份平台未返回 ID 令牌")
        principal = principal_from_claims(settings, dict(claims))
    except OAuthError as exc:
        log.info("OIDC sign-in refused: %s", exc.error)
        return _message_page("登录失败", f"统一身份认证未完成（{exc.error}），请重新登录。", 401,
                             "<p><a href=/login>重新登录</a></p>")
    except AuthError as exc:
        return _message_page("登录失败", str(exc), 403, "<p><a href=/login>重新登录</a></p>")
    except Exception as exc:  # network or protocol failure talking to the identity platform
        log.warning("OIDC callback failed: %s", exc)
        return _message_page("登录失败", f"统一身份认证平台暂时无法访问（{type(exc).__name__}）。", 502)
    _start_session(request, principal, token.get("id_token"))
    return RedirectResponse(target, status_code=303)


async def _logout(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    data = request.session.get(_KEY)
    id_token = data.get("id_token") if isinstance(data, dict) else None
    request.session.clear()
    done = str(request.url_for("signed_out"))
    if oidc_enabled(settings):  # end the identity platform's session too, where it offers RP-initiated logout
        try:
            metadata = await _oidc_client(request).load_server_metadata()
            end = metadata.get("end_session_endpoint")
        except Exception:  # unreachable: the gateway's session is ended all the same
            end = None
        if end:
            query = {"post_logout_redirect_uri": done, "client_id": settings.oidc_client_id or ""}
            if id_token:
                query["id_token_hint"] = id_token
            return RedirectResponse(f"{end}{'&' if '?' in end else '?'}{urlencode(query)}", status_code=303)
    return RedirectResponse(done, status_code=303)


@router.post("/logout", include_in_schema=False, response_model=None)
async def logout(request: Request) -> Response:
    """Sign out: the session cookie is emptied (and the identity platform's session ended, where it can be)."""
    return await _logout(request)


@router.get("/logout", include_in_schema=False, response_model=None)
async def logout_get(request: Request) -> Response:
    """Sign-out by link works too: ending a session is harmless to forge, and a link is what users bookmark."""
    return await _logout(request)


@router.get("/signed-out", include_in_schema=False, name="signed_out")
async def signed_out() -> HTMLResponse:
    return page("已退出 Signed out", "<p id=signed-out>您已安全退出。 You are signed out.</p>"
                "<p><a href=/login id=sign-in-again>重新登录 Sign in again</a></p>")


