"""`gateway migrate`, `gateway token` and `gateway serve`: bringing up the database, minting tokens, serving."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from typing import Any

from gateway.cli.base import CommandError, command, open_store
from gateway.core.auth import mint_token
from gateway.core.db import make_engine
from gateway.core.migrate import current_revision, migrate
from gateway.core.settings import JWT_SECRET_MIN_BYTES, Settings
from gateway.units.models import OrgUnit


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve the API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)

    sub.add_parser("migrate", help="bring the database schema up to date")

    p = sub.add_parser("token", help="print a bearer token signed with GATEWAY_JWT_SECRET")
    p.add_argument("--sub", required=True)
    p.add_argument("--unit", required=True)
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


@command("token")
async def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    if settings.jwt_secret is None:
        raise CommandError("GATEWAY_JWT_SECRET is not set")
    roles = [r.strip() for r in args.roles.split(",") if r.strip()]
    if args.ttl <= 0:
        raise CommandError(f"--ttl must be a positive number of seconds, got {args.ttl}")
    # A token for a unit the gateway does not know would be refused on every call: refuse to make it.
    engine, sm = await open_store(settings)
    try:
        async with sm() as session:
            known = await session.get(OrgUnit, args.unit) is not None
    finally:
        await engine.dispose()
    if not known:
        raise CommandError(f"unit {args.unit!r} does not exist: load it with `gateway import-units` first")
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


@command("serve")
async def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    problem = jwt_secret_problem(settings)
    if problem is not None:
        raise CommandError(problem)

    logging.getLogger().setLevel(os.environ.get("GATEWAY_LOG_LEVEL", "INFO").upper())
    config = uvicorn.Config(
        "gateway.api.app:create_app", factory=True, host=args.host, port=args.port, workers=args.workers,
        log_config=None, access_log=False,  # our JSON handler on the root logger, and our access log
    )
    if args.workers > 1:  # uvicorn's multi-process supervisor is synchronous
        await asyncio.to_thread(uvicorn.run, "gateway.api.app:create_app", factory=True, host=args.host,
                                port=args.port, workers=args.workers, access_log=False)
    else:
        await uvicorn.Server(config).serve()
    return 0
