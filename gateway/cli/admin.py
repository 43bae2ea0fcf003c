"""`gateway migrate`, `gateway token` and `gateway serve`: bringing up the database, minting tokens, serving."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from typing import Any

from gateway.cli.base import CommandError, command
from gateway.core.auth import mint_token
from gateway.core.db import make_engine
from gateway.core.migrate import current_revision, migrate
from gateway.core.settings import Settings


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
    try:
        print(mint_token(settings.jwt_secret.get_secret_value(), args.sub, args.unit, roles, args.ttl))
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    return 0


@command("serve")
async def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    if settings.jwt_secret is None:
        raise CommandError("GATEWAY_JWT_SECRET is not set: the server refuses to start without it")

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
