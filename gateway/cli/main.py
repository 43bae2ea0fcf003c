"""The `gateway` command's entry point: the parser of every subcommand and `main()`.

Subcommands live in the modules of this package by what they touch (admin, ingest, dispatch, report,
schema, demo); each registers its handler with `@command` and adds its parser in `add_parsers`.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import inspect
import os
import sys
import warnings

from pydantic import ValidationError

from gateway.cli import admin, demo, dispatch, ingest, report, schema
from gateway.cli.base import COMMANDS, CommandError
from gateway.core.observability import configure_logging
from gateway.core.settings import get_settings

MODULES = (demo, admin, ingest, dispatch, report, schema)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="12315 integration and evaluation gateway")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in MODULES:
        module.add_parsers(sub)
    return parser


def _version() -> str:
    try:
        return importlib.metadata.version("gateway12315")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def _one_line_warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
    """Libraries' warnings as one plain line on stderr (no file name, no source line)."""
    text = " ".join(str(message).split())
    print(f"gateway: warning: {text}", file=sys.stderr)


def _setting_errors(exc: ValidationError) -> str:
    """A bad setting, named by its environment variable, in one line (values are not echoed: they may be
    secrets)."""
    parts = []
    for error in exc.errors():
        name = "GATEWAY_" + "_".join(str(p) for p in error["loc"]).upper()
        parts.append(f"{name}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def main(argv: list[str] | None = None) -> int:
    # JSON lines on stderr (GATEWAY_LOG_FORMAT=text for people at a terminal); stdout stays the result's.
    configure_logging(os.environ.get("GATEWAY_LOG_LEVEL", "WARNING"),
                      json_logs=os.environ.get("GATEWAY_LOG_FORMAT", "json").lower() != "text")
    warnings.showwarning = _one_line_warning
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as exc:
        print(f"gateway {args.command}: bad setting {_setting_errors(exc)}", file=sys.stderr)
        return 2
    try:
        outcome = COMMANDS[args.command](args, settings)
        if inspect.iscoroutine(outcome):
            return int(asyncio.run(outcome))
        assert isinstance(outcome, int)
        return outcome
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

