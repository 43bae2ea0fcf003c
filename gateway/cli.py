"""The `gateway` command. Results go to standard output and nothing else does: progress, logs and
warnings go to standard error, so that `TOKEN=$(gateway token …)` and `gateway report … > r.json` work.
Exit status 0 on success; otherwise non-zero with a one-line reason on standard error.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from gateway.settings import Settings, get_settings


class CommandError(Exception):
    """A failure the user can act on: printed as one line, exit status `status`."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


Handler = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]
COMMANDS: dict[str, Handler] = {}


def command(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        COMMANDS[name] = fn
        return fn

    return register


async def open_store(settings: Settings) -> Any:
    """Engine and sessionmaker for the configured database, migrated when auto-migrate is on."""
    from gateway.db import make_engine, make_sessionmaker
    from gateway.migrate import migrate

    engine = make_engine(settings.database_url)
    if settings.auto_migrate:
        await migrate(engine)
    return engine, make_sessionmaker(engine)


# ------------------------------------------------------------------------------------------- commands


@command("migrate")
async def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.db import make_engine
    from gateway.migrate import current_revision, migrate

    engine = make_engine(settings.database_url)
    try:
        await migrate(engine)
        print(f"database at revision {await current_revision(engine)}")
    finally:
        await engine.dispose()
    return 0


@command("import-units")
async def cmd_import_units(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.db import transaction
    from gateway.units import UnitFileError, import_units

    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read {path}: {exc}", status=2) from None
    engine, sm = await open_store(settings)
    try:
        async with transaction(sm) as session:
            added, updated = await import_units(session, text)
    except UnitFileError as exc:
        raise CommandError(f"{path}: {exc}; nothing was loaded") from None
    finally:
        await engine.dispose()
    print(f"units: {added} added, {updated} updated")
    return 0


@command("import")
async def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.importer import UnreadableFile, import_file

    path = Path(args.file)
    engine, sm = await open_store(settings)
    rejects = open(args.rejects, "w", encoding="utf-8") if args.rejects else None  # noqa: SIM115
    try:
        report = await import_file(sm, path, rejects=rejects, progress=not args.quiet)
    except UnreadableFile as exc:
        raise CommandError(str(exc), status=2) from None
    finally:
        if rejects:
            rejects.close()
        await engine.dispose()
    print(
        f"lines {report.lines}: stored {report.stored} (new {report.inserted}, updated {report.updated}, "
        f"unchanged {report.unchanged}), rejected {len(report.rejected)}"
    )
    return 1 if report.rejected else 0


@command("token")
async def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.auth import mint_token

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
        "gateway.app:create_app", factory=True, host=args.host, port=args.port, workers=args.workers,
        log_config=None, access_log=False,  # our JSON handler on the root logger, and our access log
    )
    if args.workers > 1:  # uvicorn's multi-process supervisor is synchronous
        await asyncio.to_thread(uvicorn.run, "gateway.app:create_app", factory=True, host=args.host,
                                port=args.port, workers=args.workers, access_log=False)
    else:
        await uvicorn.Server(config).serve()
    return 0


@command("demo")
async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.demo import run_demo

    return await run_demo(args, settings)


# ------------------------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="12315 integration and evaluation gateway")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="the whole system on one machine, no set-up")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--records", type=int, default=20000)
    p.add_argument("--host", default="127.0.0.1")

    p = sub.add_parser("serve", help="serve the API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)

    sub.add_parser("migrate", help="bring the database schema up to date")

    p = sub.add_parser("import-units", help="load org units from CSV (records.md)")
    p.add_argument("file")

    p = sub.add_parser("import", help="load records from JSON Lines (.jsonl or .jsonl.gz)")
    p.add_argument("file")
    p.add_argument("--rejects", help="write rejected lines (JSON Lines) to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("token", help="print a bearer token signed with GATEWAY_JWT_SECRET")
    p.add_argument("--sub", required=True)
    p.add_argument("--unit", required=True)
    p.add_argument("--roles", required=True, help="comma-separated: reader,evaluator,operator,credit,pii")
    p.add_argument("--ttl", type=int, default=3600, help="seconds")

    for extend in EXTENSIONS:
        extend(sub)
    return parser


# Subcommands contributed by other parts of the gateway (sync, dispatch, report, schema), each a function
# that adds its parser and registers its handler with @command.
EXTENSIONS: list[Callable[[Any], None]] = []


def _load_extensions() -> None:
    import importlib

    for module in ("gateway.sync", "gateway.reports_cli", "gateway.dispatch", "gateway.graphql_cli"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        EXTENSIONS.append(mod.add_subcommand)


def main(argv: list[str] | None = None) -> int:
    from gateway.observability import configure_logging

    # JSON lines on stderr (GATEWAY_LOG_FORMAT=text for people at a terminal); stdout stays the result's.
    configure_logging(os.environ.get("GATEWAY_LOG_LEVEL", "WARNING"),
                      json_logs=os.environ.get("GATEWAY_LOG_FORMAT", "json").lower() != "text")
    _load_extensions()
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
        return asyncio.run(COMMANDS[args.command](args, settings))
    except CommandError as exc:
        print(f"gateway {args.command}: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one line, no traceback, unless asked for
        if os.environ.get("GATEWAY_DEBUG"):
            raise
        print(f"gateway {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1

