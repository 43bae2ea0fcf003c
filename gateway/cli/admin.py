"""`gateway migrate`, `gateway token` and `gateway serve`: bringing up the database, minting tokens, serving."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from gateway.cli.base import CommandError, command, open_store, require_database
from gateway.core.db import make_engine
from gateway.core.migrate import current_revision, head_revision, migrate
from gateway.core.settings import JWT_SECRET_MIN_BYTES, Settings
from gateway.units.models import OrgUnit


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve the API")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0: all)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes (default 1); with more, /metrics still counts every worker's requests")

    sub.add_parser("migrate", help="bring the database schema up to date")
    sub.add_parser("health", help="exit 0 when the database answers and its schema is current (container "
                                  "healthchecks of every role: serve, dispatch, sync)")

    p = sub.add_parser("token", help="print a bearer token signed with GATEWAY_JWT_SECRET")
    p.add_argument("--sub", required=True, help="the caller's name, e.g. the external system (claim sub)")
    p.add_argument("--unit", required=True, help="the caller's org-unit code, e.g. 510000 (claim unit)")
    p.add_argument("--roles", required=True, help="comma-separated: reader,evaluator,operator,credit,pii,supervisor")
    p.add_argument("--ttl", type=int, default=3600, help="seconds")


@command("migrate")
async def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:

    engine = make_engine(settings.database_url)
    try:
        await migrate(engine)
        print(f"database at revision {await current_revision(engine)}")
    finally:
        await engine.dispose()
    return 0


@command("health")
async def cmd_health(args: argparse.Namespace, settings: Settings) -> int:
    """One line on stdout and exit 0 when healthy; a one-line reason and exit 1 otherwise."""
    require_database(settings)
    engine = make_engine(settings.database_url)
    try:
        async with asyncio.timeout(5):
            revision = await current_revision(engine)
    except Exception as exc:  # any failure to reach the database is "unhealthy", said in one line
        raise CommandError(f"database unavailable: {type(exc).__name__}") from None
    finally:
        await engine.dispose()
    if revision != head_revision():
        raise CommandError(f"database schema at {revision}, expected {head_revision()}: run gateway migrate")
    print(f"ok: database at revision {revision}")
    return 0


@command("token")
async def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    if settings.jwt_secret is None:
        raise CommandError("GATEWAY_JWT_SECRET is not set")
    roles = [r.strip() for r in args.roles.split(",") if r.strip()]
    if args.ttl <= 0:
        raise CommandError(f"--ttl must be a positive number of seconds, got {args.ttl}")
    # A token for a unit the gateway does not know would be refused on every call: refuse to make it.
    require_database(settings)
    engine, sm = await open_store(settings)
    try:
        async with sm() as session:
            known = await session.get(OrgUnit, args.unit) is not None
    finally:
        await engine.dispose()
    if not known:
        raise CommandError(f"unit {args.unit!r} does not exist: load it with `gateway import-units` first")
    from gateway.core.auth import mint_token  # here: the other commands need no JWT library

    try:
        print(mint_token(settings.jwt_secret.get_secret_value(), args.sub, args.unit, roles, args.ttl))
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    return 0


def jwt_secret_problem(settings: Settings) -> str | None:
    """Why `serve` must not start with this GATEWAY_JWT_SECRET (None when it may), in one line."""
    if settings.jwt_secret is None:
        return "GATEWAY_JWT_SECRET is not set: the server refuses to start without it"
    size = len(settings.jwt_secret.get_secret_value().encode())
    if size < JWT_SECRET_MIN_BYTES:
        return (f"GATEWAY_JWT_SECRET is {size} bytes; at least {JWT_SECRET_MIN_BYTES} are needed "
                "(e.g. `openssl rand -hex 32`): the server refuses to start")
    return None


def _multiprocess_metrics() -> None:
    """Workers share their metrics through files in PROMETHEUS_MULTIPROC_DIR (prometheus-client's multiprocess
    mode), so /metrics answers for every worker. An operator's folder is emptied first (files of an earlier run
    would be added in); otherwise a fresh temporary folder. Set before the workers start: each reads it when
    it first imports prometheus_client."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        for stale in Path(folder).glob("*.db"):
            stale.unlink()
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="gateway-metrics-")


@command("serve")
def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    problem = jwt_secret_problem(settings)
    if problem is not None:
        raise CommandError(problem)

    logging.getLogger().setLevel(os.environ.get("GATEWAY_LOG_LEVEL", "INFO").upper())
    config = uvicorn.Config(
        "gateway.api.app:create_app", factory=True, host=args.host, port=args.port, workers=args.workers,
        log_config=None, access_log=False,  # our JSON handler on the root logger, and our access log
    )
    if args.workers > 1:  # uvicorn's process supervisor: on the main thread (it handles signals)
        _multiprocess_metrics()
        uvicorn.run("gateway.api.app:create_app", factory=True, host=args.host, port=args.port,
                    workers=args.workers, log_config=None, access_log=False)
    else:
        asyncio.run(uvicorn.Server(config).serve())
    return 0
