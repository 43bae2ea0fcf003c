"""`gateway schema`: print the GraphQL schema (SDL), the same text as graphql/schema.graphql."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gateway.cli import command
from gateway.settings import Settings


def add_subcommand(subparsers: Any) -> None:
    subparsers.add_parser("schema", help="print the GraphQL schema (SDL)")


@command("schema")
async def cmd_schema(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.gql.schema import sdl

    sys.stdout.write(sdl())
    return 0
