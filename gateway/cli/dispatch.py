"""`gateway dispatch [--once] [--reconcile [--repair]] [--failed] [--requeue ID… | --requeue-all]`: deliver the
outbox, compare with the credit system, list the dead letters or put them back in the queue."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.cli.base import CommandError, command, open_store
from gateway.core.settings import Settings
from gateway.core.time import format_instant
from gateway.core.upstreams import build_upstreams
from gateway.flags.dispatch import Outbound, dispatch_config, reconcile
from gateway.flags.outbox import Dispatcher, dead_letters, requeue

log = logging.getLogger(__name__)

REQUEUE_HINT = "list them with `gateway dispatch --failed`, put them back with `gateway dispatch --requeue ID...`"


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("dispatch", help="deliver pending complaint flags and incidents")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="one pass over the items due now, then exit")
    mode.add_argument("--reconcile", action="store_true",
                      help="compare the credit system's flags with what the gateway sent, then exit")
    mode.add_argument("--failed", action="store_true",
                      help="list the deliveries a system refused for good (dead letters), one JSON object a line")
    mode.add_argument("--requeue", nargs="+", metavar="ID",
                      help="put these failed deliveries back in the queue (same body, same Idempotency-Key)")
    mode.add_argument("--requeue-all", action="store_true", help="put every failed delivery back in the queue")
    p.add_argument("--repair", action="store_true", help="with --reconcile: fix what can be fixed")
    p.add_argument("--uscc", action="append", help="with --reconcile: only this enterprise (repeatable)")


@command("dispatch")
async def cmd_dispatch(args: argparse.Namespace, settings: Settings) -> int:
    engine, sm = await open_store(settings)
    try:
        if args.failed:
            return await _failed(sm)
        if args.requeue or args.requeue_all:
            return await _requeue(sm, None if args.requeue_all else args.requeue)
        upstreams = build_upstreams(settings)
        try:
            outbound = Outbound.of(upstreams)
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
    finally:
        await engine.dispose()


async def _once(dispatcher: Dispatcher) -> int:
    report = await dispatcher.run_pass()
    backlog = await dispatcher.update_gauges()
    failed: dict[str, int] = {system: 0 for system in backlog}
    for letter in await dead_letters(dispatcher.sm):
        failed[letter.system] = failed.get(letter.system, 0) + 1
    print(json.dumps({"outcomes": report.outcomes, "pending": {s: n for s, (n, _) in backlog.items()},
                      "failed": failed}))
    problems = []
    waiting = await dispatcher.unleased_pending()  # items another dispatcher is sending now are not stuck
    if waiting:
        why = "; ".join(f"{s}: {e}" for s, e in report.last_errors.items()) or "not due yet or not configured"
        problems.append(f"{waiting} items still pending ({why})")
    if dead := sum(failed.values()):
        problems.append(f"{dead} deliveries refused for good; {REQUEUE_HINT}")
    if problems:
        raise CommandError("; ".join(problems))
    return 0


async def _failed(sm: async_sessionmaker[AsyncSession]) -> int:
    for letter in await dead_letters(sm):
        print(json.dumps({
            "id": letter.id, "system": letter.system, "kind": letter.kind, "attempts": letter.attempts,
            "last_error": letter.last_error, "failed_at": _instant(letter.failed_at),
        }, ensure_ascii=False))
    return 0


async def _requeue(sm: async_sessionmaker[AsyncSession], ids: list[str] | None) -> int:
    count, unknown = await requeue(sm, ids)
    print(count)
    if unknown:
        shown = ", ".join(unknown[:10]) + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
        raise CommandError(f"not failed deliveries (unknown, pending or delivered): {shown}")
    return 0


async def _reconcile(args: argparse.Namespace, sm: async_sessionmaker[AsyncSession], outbound: Outbound) -> int:
    if not outbound.credit.configured:
        raise CommandError("GATEWAY_CREDIT_URL is not set: nothing to reconcile against")
    report = await reconcile(sm, outbound.credit, args.uscc, repair=args.repair)
    print(json.dumps({**asdict(report), "consistent": report.consistent}, ensure_ascii=False))
    unfixable = report.unknown or report.duplicated or report.severity_differs or report.unreachable
    fixable = report.missing or report.received_unmarked
    if report.failed:
        raise CommandError(f"{len(report.failed)} flags refused for good by the credit system; {REQUEUE_HINT}")
    if unfixable or (fixable and not args.repair):
        raise CommandError("the credit system and the gateway disagree (see the report)")
    return 0


def _instant(at: datetime | None) -> str | None:
    return format_instant(at) if at else None
