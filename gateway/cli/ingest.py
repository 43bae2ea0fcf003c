"""`gateway import-units`, `gateway import` and `gateway sync`: the ways records and units come in."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from connectors import ComplaintsConnector, UpstreamFailure
from gateway.cli.base import CommandError, command, open_store
from gateway.core.db import transaction
from gateway.core.settings import Settings
from gateway.core.upstreams import connector_config
from gateway.ingest.importer import BLOCK, UnreadableFile, import_file
from gateway.ingest.store import RECORDS_PER_TRANSACTION
from gateway.ingest.sync import PAGE_SIZE, NoUnits, run_forever, sync_until_caught_up
from gateway.ingest.units_file import UnitFileError, decode_units_file, import_units
from gateway.ingest.workers import Decoders, default_workers


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("import-units", help="load org units from CSV (records.md)")
    p.add_argument("file", help="CSV with header code,name,level,parent_code (UTF-8)")

    p = sub.add_parser("import", help="load records from JSON Lines (.jsonl or .jsonl.gz)")
    p.add_argument("file", help="one record (records.md) per line; .gz is decompressed")
    p.add_argument("--rejects", help="write rejected lines (JSON Lines) to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--workers", type=int, help="processes that decode records (default: one per core; "
                   "none for files under 1 MB)")
    p.add_argument("--block-size", type=int, default=BLOCK, help=f"bytes of lines decoded together "
                   f"(default {BLOCK >> 20} MiB)")
    p.add_argument("--records-per-transaction", type=int, default=RECORDS_PER_TRANSACTION,
                   help=f"blocks are stored together until they hold this many records (default "
                   f"{RECORDS_PER_TRANSACTION}; 1: a transaction per block)")
    p.add_argument("--writers", type=int, help="transactions stored at once (default: 2 on PostgreSQL, 1 on SQLite)")

    p = sub.add_parser("sync", help="pull changes from the complaint platform, resuming from the stored cursor")
    p.add_argument("--once", action="store_true", help="stop once caught up instead of following the feed")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between polls when following")
    p.add_argument("--limit", type=int, default=PAGE_SIZE, help="records per page (1..1000)")
    p.add_argument("--records-per-transaction", type=int, default=RECORDS_PER_TRANSACTION,
                   help=f"pages are stored together until they hold this many records (default "
                   f"{RECORDS_PER_TRANSACTION}; 1: a transaction per page)")


@command("import-units")
async def cmd_import_units(args: argparse.Namespace, settings: Settings) -> int:

    path = Path(args.file)
    try:
        text = decode_units_file(path.read_bytes())
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror or exc}", status=2) from None
    except UnitFileError as exc:
        raise CommandError(f"cannot read {path}: {exc}; nothing was loaded", status=2) from None
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


def _refuse_unit_file(path: Path) -> None:
    """A CSV given to `gateway import` is almost always the unit file: say so rather than reject every line."""
    try:
        with path.open("rb") as fh:
            head = fh.read(256)
    except OSError:
        return  # the import reports an unreadable file in its own words
    first = head.decode("utf-8", "replace").lstrip("\ufeff").split("\n", 1)[0].strip().lower()
    if path.suffix.lower() == ".csv" or first.startswith("code,"):
        raise CommandError(f"{path} looks like an org-unit CSV (header {first or 'code,name,level,parent_code'}), "
                           f"not JSON Lines records: load it with gateway import-units {path}", status=2)


@command("import")
async def cmd_import(args: argparse.Namespace, settings: Settings) -> int:

    path = Path(args.file)
    _refuse_unit_file(path)
    if args.workers is not None and args.workers < 0:
        raise CommandError("--workers must be 0 or more")
    if args.block_size < 1:
        raise CommandError("--block-size must be at least 1")
    if args.records_per_transaction < 1:
        raise CommandError("--records-per-transaction must be at least 1")
    if args.writers is not None and args.writers < 1:
        raise CommandError("--writers must be at least 1")
    try:
        size: int | None = path.stat().st_size
    except OSError:
        size = None
    # The workers start first: forked before this process opens connections or starts threads.
    decoders = Decoders(default_workers(size) if args.workers is None else args.workers)
    engine, sm = await open_store(settings)
    rejects = open(args.rejects, "w", encoding="utf-8") if args.rejects else None  # noqa: SIM115
    try:
        report = await import_file(
            sm, path, rejects=rejects, progress=not args.quiet, decoders=decoders, block_size=args.block_size,
            records_per_transaction=args.records_per_transaction, writers=args.writers,
        )
    except UnreadableFile as exc:
        raise CommandError(str(exc), status=2) from None
    finally:
        decoders.close()
        if rejects:
            rejects.close()
        await engine.dispose()
    print(
        f"lines {report.lines}: stored {report.stored} (new {report.inserted}, updated {report.updated}, "
        f"unchanged {report.unchanged}, stale {report.stale}), rejected {len(report.rejected)}"
    )
    return 1 if report.rejected else 0



@command("sync")
async def cmd_sync(args: argparse.Namespace, settings: Settings) -> int:
    config = connector_config(settings, "complaints")
    if not config.configured:
        raise CommandError("GATEWAY_COMPLAINTS_URL is not set: there is no complaint platform to sync from")
    if not 1 <= args.limit <= PAGE_SIZE:
        raise CommandError(f"--limit must be 1..{PAGE_SIZE}")
    if args.records_per_transaction < 1:
        raise CommandError("--records-per-transaction must be at least 1")
    decoders = Decoders(default_workers())  # forked before this process opens connections or starts threads
    engine, sm = await open_store(settings)
    connector = ComplaintsConnector(config)
    try:
        if args.once:
            try:
                report = await sync_until_caught_up(sm, connector, limit=args.limit, decoders=decoders,
                                                    records_per_transaction=args.records_per_transaction)
            except UpstreamFailure as exc:
                raise CommandError(f"{exc.code}: {exc}") from None
            except NoUnits as exc:
                raise CommandError(str(exc)) from None
            print(f"{report.summary()}; {report.stored / max(report.seconds, 1e-9):.0f} records/s")
        else:
            await run_forever(sm, connector, interval_s=args.interval, limit=args.limit, decoders=decoders,
                              records_per_transaction=args.records_per_transaction)
    finally:
        decoders.close()
        await connector.aclose()
        await engine.dispose()
    return 0
