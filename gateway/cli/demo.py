"""`gateway demo`: the whole system on one machine with no set-up (what it runs: `demo_world`).

The command imports `demo_world` when it runs, not when `gateway` starts: the simulators and the server
it needs cost every other command a third of a second of start-up (`python -X importtime`).
"""

from __future__ import annotations

import argparse
from typing import Any

from gateway.cli.base import command
from gateway.core.settings import Settings


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("demo", help="the whole system on one machine, no set-up")
    p.add_argument("--port", type=int, default=8000, help="TCP port of the gateway (default 8000)")
    p.add_argument("--records", type=int, default=20000, help="synthetic records to generate (default 20000)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")


@command("demo")
async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.cli.demo_world import run_demo  # heavy: see the module docstring

    return await run_demo(args, settings)
