"""The `gateway` command's entry point: the parser of every subcommand and `main()`.

Subcommands live in the modules of this package by what they touch (admin, ingest, dispatch, report,
schema, demo); each registers its handler with `@command` and adds its parser in `add_parsers`.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import sys

from gateway.cli import admin, demo, dispatch, ingest, report, schema
from gateway.cli.base import COMMANDS, CommandError
from gateway.core.observability import configure_logging
from gateway.core.settings import get_settings

MODULES = (demo, admin, ingest, dispatch, report, schema)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="12315 integration and evaluation gateway")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in MODULES:
        module.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # JSON lines on stderr (GATEWAY_LOG_FORMAT=text for people at a terminal); stdout stays the result's.
    configure_logging(os.environ.get("GATEWAY_LOG_LEVEL", "WARNING"),
                      json_logs=os.environ.get("GATEWAY_LOG_FORMAT", "json").lower() != "text")
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
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

