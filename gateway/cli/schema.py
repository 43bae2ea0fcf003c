"""`gateway schema`: print the GraphQL schema (SDL), the same text as graphql/schema.graphql."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gateway.cli.base import command
from gateway.core.settings import Settings


def add_parsers(sub: Any) -> None:
    sub.add_parser("schema", help="print the GraphQL schema (SDL)")


@command("schema")
async def cmd_schema(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.api.gql.schema import sdl

    sys.stdout.write(sdl())
    return 0
