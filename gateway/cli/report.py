"""`gateway report`: a KPI report (kpi.md) on standard output, or in a file with --out.

    gateway report --unit CODE [--level L] --from DATE --to DATE [--as-of TIME] [--scheme NAME]
                   [--format table|json|csv|xlsx] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from gateway.cli.base import CommandError, command, open_store, require_database
from gateway.core.settings import Settings
from gateway.core.time import parse_date, parse_instant

FORMATS = ("table", "json", "csv", "xlsx")


def _date(text: str) -> date:
    try:
        return parse_date(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("report", help="a KPI report (kpi.md)")
    p.add_argument("--unit", required=True, help="code of the unit evaluated")
    p.add_argument("--level", type=int, help="level of the rows (default: the unit's level + 1)")
    p.add_argument("--from", dest="date_from", required=True, type=_date, help="first day received, YYYY-MM-DD")
    p.add_argument("--to", dest="date_to", required=True, type=_date, help="last day received, YYYY-MM-DD")
    p.add_argument("--as-of", dest="as_of", help="evaluation instant, RFC 3339 with offset (default: now)")
    p.add_argument("--scheme", help="scoring scheme (default: default)")
    p.add_argument("--format", choices=FORMATS, default="table",
                   help="table (default, for a terminal), json (interfaces.md), csv (UTF-8 with BOM) or xlsx")
    p.add_argument("--out", help="write to this file instead of standard output")


@command("report")
async def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.reports.build import KpiConfigError, ReportError, build_report, load_config
    from gateway.supervision.report import count_orders
    from kpi.exports import to_csv, to_table, to_xlsx

    try:
        as_of = parse_instant(args.as_of) if args.as_of else None
    except ValueError as exc:
        raise CommandError(f"--as-of: {exc}") from None
    try:
        config = load_config()
    except KpiConfigError as exc:
        raise CommandError(str(exc)) from None
    require_database(settings)
    engine, sm = await open_store(settings)
    try:
        async with sm() as session:
            doc = await build_report(
                session, unit=args.unit, level=args.level, date_from=args.date_from, date_to=args.date_to,
                as_of=as_of, scheme=args.scheme, config=config, orders=count_orders,
            )
    except ReportError as exc:
        raise CommandError(str(exc)) from None
    finally:
        await engine.dispose()

    body: str | bytes
    if args.format == "json":
        body = json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
    elif args.format == "csv":
        body = to_csv(doc)
    elif args.format == "xlsx":
        body = to_xlsx(doc, config.policies.scheme(doc["scheme"]).weights)
    else:
        body = to_table(doc)
    if args.out:
        try:
            path = Path(args.out)
            if isinstance(body, bytes):
                path.write_bytes(body)
            else:
                path.write_text(body, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    elif isinstance(body, bytes):
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()
    else:
        sys.stdout.write(body)
    return 0
