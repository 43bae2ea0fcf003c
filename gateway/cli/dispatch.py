"""`gateway dispatch [--once] [--reconcile [--repair]]`: deliver the outbox, or compare with the credit system."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
from dataclasses import asdict
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.cli.base import CommandError, command, open_store
from gateway.core.settings import Settings
from gateway.core.upstreams import build_upstreams
from gateway.flags.dispatch import Outbound, dispatch_config, reconcile
from gateway.flags.outbox import Dispatcher

log = logging.getLogger(__name__)

def add_parsers(sub: Any) -> None:
    p = sub.add_parser("dispatch", help="deliver pending complaint flags and incidents")
    p.add_argument("--once", action="store_true", help="one pass over the items due now, then exit")
    p.add_argument("--reconcile", action="store_true",
                   help="compare the credit system's flags with what the gateway sent, then exit")
    p.add_argument("--repair", action="store_true", help="with --reconcile: fix what can be fixed")
    p.add_argument("--uscc", action="append", help="with --reconcile: only this enterprise (repeatable)")


@command("dispatch")
async def cmd_dispatch(args: argparse.Namespace, settings: Settings) -> int:
    engine, sm = await open_store(settings)
    upstreams = build_upstreams(settings)
    outbound = Outbound.of(upstreams)
    try:
        if args.reconcile:
            return await _reconcile(args, sm, outbound)
        dispatcher = Dispatcher(sm, outbound.senders, dispatch_config(settings))
        if args.once:
            return await _once(dispatcher)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("dispatcher %s running", dispatcher.owner)
        await dispatcher.run_forever(stop)
        return 0
    finally:
        await upstreams.aclose()
        await engine.dispose()


async def _once(dispatcher: Dispatcher) -> int:
    report = await dispatcher.run_pass()
    backlog = await dispatcher.update_gauges()
    print(json.dumps({"outcomes": report.outcomes, "pending": {s: n for s, (n, _) in backlog.items()}}))
    waiting = await dispatcher.unleased_pending()  # items another dispatcher is sending now are not stuck
    if waiting:
        why = "; ".join(f"{s}: {e}" for s, e in report.last_errors.items()) or "not due yet or not configured"
        raise CommandError(f"{waiting} items still pending ({why})")
    return 0


async def _reconcile(args: argparse.Namespace, sm: async_sessionmaker[AsyncSession], outbound: Outbound) -> int:
    if not outbound.credit.configured:
        raise CommandError("GATEWAY_CREDIT_URL is not set: nothing to reconcile against")
    report = await reconcile(sm, outbound.credit, args.uscc, repair=args.repair)
    print(json.dumps({**asdict(report), "consistent": report.consistent}, ensure_ascii=False))
    unfixable = report.unknown or report.duplicated or report.severity_differs or report.unreachable
    fixable = report.missing or report.received_unmarked
    if unfixable or (fixable and not args.repair):
        raise CommandError("the credit system and the gateway disagree (see the report)")
    return 0
