"""The FastAPI application: one factory that composes the routers of every part of the gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from sqlalchemy import text
from starlette.routing import WebSocketRoute

from gateway.api import analysis, ingest, observe, reports, reports_page, session, supervision_page
from gateway.api.gql import graphiql, http
from gateway.api.gql.ws import GraphQLWebSocketEndpoint
from gateway.core.db import make_engine, make_sessionmaker
from gateway.core.migrate import current_revision, head_revision, migrate
from gateway.core.settings import Settings, get_settings
from gateway.core.upstreams import build_upstreams
from gateway.flags.dispatch import BackgroundDispatcher
from gateway.flags.outbox import refresh_outbox_gauges


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        if settings.auto_migrate:
            await migrate(engine)
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        # One set of connectors per process: GraphQL and the outbox dispatcher call through the same
        # clients, so each system has one circuit breaker, and /readyz shows it.
        app.state.upstreams = upstreams = build_upstreams(settings)
        upstreams.warm_up()
        # The outbox backlog is shared by every process: each replica reports it when scraped.
        app.state.refresh_gauges = partial(refresh_outbox_gauges, app.state.sessionmaker)
        dispatcher = (BackgroundDispatcher(settings, app.state.sessionmaker, upstreams)
                      if settings.dispatcher else None)
        try:
            yield
        finally:
            hub = getattr(app.state, "alert_hub", None)  # the live feed, if anyone subscribed
            if hub is not None:
                await hub.stop()
            if dispatcher is not None:
                await dispatcher.stop()
            await upstreams.aclose()
            await engine.dispose()

    # /docs and /redoc from the assets of the installed fastapi-offline wheel, never a CDN (intranets).
    app = FastAPIOffline(title="12315 gateway", version="1", lifespan=lifespan, static_url="/static/docs",
                         favicon_url="/static/docs/favicon.png")
    graphiql.mount(app)
    app.state.settings = settings
    app.include_router(ingest.router)
    app.include_router(reports.router)
    app.include_router(analysis.router)
    app.include_router(reports_page.router)
    app.include_router(supervision_page.router)
    session.install(app, settings)  # sign-in, session cookie and CSRF of the pages
    observe.install(app)
    app.include_router(http.router)
    app.router.routes.append(WebSocketRoute("/graphql", GraphQLWebSocketEndpoint()))  # the live feed

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        body: dict[str, Any] = {"database": "ok", "migrations": "current", "systems": {}}
        status = 200
        try:
            async with app.state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            if await current_revision(app.state.engine) != head_revision():
                body["migrations"], status = "outdated", 503
        except Exception as exc:  # any failure to reach the database means not ready
            body["database"], status = f"unavailable: {type(exc).__name__}", 503
        upstreams = getattr(app.state, "upstreams", None)
        if upstreams is not None:
            body["systems"] = upstreams.circuit_states()
        body["status"] = "ready" if status == 200 else "not ready"
        return JSONResponse(body, status_code=status)

    return app
