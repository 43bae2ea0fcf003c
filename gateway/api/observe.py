"""Request ids, access logs and HTTP metrics on every request, and `GET /metrics`: the HTTP half of
`gateway.core.observability` (whose metrics and logs it records)."""

from __future__ import annotations

import time
import uuid

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.datastructures import Headers, MutableHeaders
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors.context import request_id_var
from gateway.core.observability import HTTP_DURATION, HTTP_REQUESTS, REQUEST_ID, log, metrics_text


def _route_template(request: Request) -> str:
    """The matched route's path template, so labels stay few. FastAPI's own routes put themselves in the scope;
    Starlette routes (`/openapi.json`) and mounts (`/static/docs/{path}`) are looked up; anything else is one
    value, "unmatched", however many paths are tried."""
    route = request.scope.get("route")
    path = getattr(route, "path", None) or getattr(route, "path_format", None)
    if path:
        return str(path)
    # a mount has rewritten root_path for its app: match as the router first saw the request
    scope = {**request.scope, "root_path": request.scope.get("app_root_path", "")}
    for candidate in request.app.router.routes:
        match, _ = candidate.matches(scope)
        if match == Match.FULL:
            template = getattr(candidate, "path_format", None) or getattr(candidate, "path", "")
            return str(template)  # a mount's format already ends in /{path}
    return "unmatched"


class Observe:
    """Request ids, access logs and HTTP metrics on every HTTP request, as plain ASGI middleware.

    Not `@app.middleware("http")`: Starlette's BaseHTTPMiddleware runs the app in a task of its own and
    re-streams its body, which costs every request, the federated query most (bench/graphql_bench.py). The
    request id is taken from `X-Request-Id` when it is safe to log and forward, made otherwise, set for the
    request's context (the connectors send it upstream) and returned in the answer's `X-Request-Id`.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = Headers(scope=scope).get("x-request-id", "")
        if not REQUEST_ID.match(rid):  # only ids safe to log and forward upstream are kept
            rid = uuid.uuid4().hex
        token = request_id_var.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-Id"] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            request = Request(scope)
            route = _route_template(request)
            HTTP_REQUESTS.labels(request.method, route, str(status)).inc()
            HTTP_DURATION.labels(request.method, route).observe(elapsed)
            log.info(
                "request", extra={"method": request.method, "route": route, "status": status,
                                  "duration_s": round(elapsed, 6)},
            )
            request_id_var.reset(token)


def install(app: FastAPI) -> None:
    """Request ids, access logs and HTTP metrics on every request; `GET /metrics` for Prometheus."""

    app.add_middleware(Observe)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        refresh = getattr(app.state, "refresh_gauges", None)
        if refresh is not None:
            await refresh()
        return Response(metrics_text(), media_type=CONTENT_TYPE_LATEST)
