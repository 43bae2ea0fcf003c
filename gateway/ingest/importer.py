"""`gateway import`: stream a JSON Lines file (optionally gzipped) into the store in batches.

A bad line is reported by line number and reason and skipped; nothing valid is lost because of it.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tqdm import tqdm

from gateway.complaints.records import ComplaintIn, validate_record
from gateway.core.db import transaction
from gateway.core.jsontext import decode
from gateway.flags.alerts import deferred_alerts
from gateway.ingest.metrics import count_rejected
from gateway.ingest.store import Rejection, raw_id, store_records
from gateway.units.tree import load_units

RECORDS_PER_TRANSACTION = 1000  # each batch of an import commits on its own
RAW_MAX = 64 * 1024  # bytes of a rejected line copied into the rejects file
BOM = b"\xef\xbb\xbf"


class UnreadableFile(Exception):
    """The file could not be read at all (exit code 2)."""


@dataclass
class ImportReport:
    lines: int = 0
    stored: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    rejected: list[Rejection] = field(default_factory=list)


def _open(path: Path) -> IO[bytes]:
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise UnreadableFile(f"cannot open {path}: {exc.strerror or exc}") from None
    if path.name.endswith(".gz"):
        gz = gzip.GzipFile(fileobj=raw)
        try:
            gz.peek(1)
        except (OSError, EOFError, zlib.error) as exc:
            raise UnreadableFile(f"{path} is not a readable gzip file: {exc}") from None
        return gz  # type: ignore[return-value]
    return raw


def _lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    try:
        yield from enumerate(stream, start=1)
    except (OSError, EOFError, zlib.error) as exc:
        raise UnreadableFile(f"file stopped being readable: {exc}") from None


async def import_file(
    sessionmaker: async_sessionmaker[AsyncSession],
    path: Path,
    rejects: IO[str] | None = None,
    progress: bool = True,
    batch_size: int = RECORDS_PER_TRANSACTION,
) -> ImportReport:
    """Stream a JSON Lines file (`.gz` read as gzip) into the store in batches of `batch_size` records, each batch in
    its own transaction; returns the counts and the rejected lines (line number, id if any, reason).

    Bad lines are reported (`rejects`: one JSON line each, with the raw line) and skipped; nothing valid is lost.
    Raises UnreadableFile when the file cannot be opened or stops being readable (what was stored stays). Early
    warning is judged once, at the end.
    """
    async with deferred_alerts(sessionmaker):
        return await _import(sessionmaker, path, rejects, progress, batch_size)


async def _import(
    sessionmaker: async_sessionmaker[AsyncSession],
    path: Path,
    rejects: IO[str] | None,
    progress: bool,
    batch_size: int,
) -> ImportReport:
    report = ImportReport()
    async with sessionmaker() as session:
        units = await load_units(session)
    size = path.stat().st_size if path.exists() else None
    with _open(path) as stream, tqdm(
        total=size, unit="B", unit_scale=True, desc=path.name, file=sys.stderr, disable=not progress
    ) as bar:
        raw_file: Any = getattr(stream, "fileobj", None) or stream
        batch: list[ComplaintIn] = []
        writing: asyncio.Task[None] | None = None
        last_pos = 0

        async def write(records: list[ComplaintIn]) -> None:
            async with transaction(sessionmaker) as session:
                result = await store_records(session, records, units, source="import")
            report.stored += len(records)
            report.inserted += result.inserted
            report.updated += result.updated
            report.unchanged += result.unchanged
            report.stale += result.stale

        async def hand_over() -> None:
            """Start writing the batch while the next one is parsed: the database works on one core
            while validation runs on the other. Batches are written in order, one at a time."""
            nonlocal batch, writing, last_pos
            if writing is not None:
                await writing
                writing = None
            if batch:
                writing = asyncio.create_task(write(batch))
                batch = []
            pos = raw_file.tell()
            bar.update(pos - last_pos)
            last_pos = pos

        for number, line in _lines(stream):
            report.lines = number
            if number % 100 == 0:
                await asyncio.sleep(0)  # let the writer move on between its statements
            if not line.strip():
                continue
            # Without its line ending (a position past it would read "line 2"); a byte-order mark that an
            # editor put before the first line is not part of the record.
            text = line.rstrip(b"\r\n")
            if number == 1 and text.startswith(BOM):
                text = text[len(BOM):]
            try:
                batch.append(validate_record(text, units))
            except ValueError as exc:
                rejection = Rejection(number, _guess_id(text), str(exc))
                report.rejected.append(rejection)
                count_rejected("import")
                bar.write(f"line {number}: {rejection.reason}", file=sys.stderr)
                if rejects is not None:
                    rejects.write(json.dumps(rejected_line(rejection, text), ensure_ascii=False) + "\n")
            if len(batch) >= batch_size:
                await hand_over()
        await hand_over()
        await hand_over()
    return report


def rejected_line(rejection: Rejection, text: bytes) -> dict[str, Any]:
    """One object of the rejects file. `raw` is the line as read (invalid UTF-8 replaced); past RAW_MAX
    bytes it is cut (at a character boundary) and `raw_truncated`/`raw_bytes` say so."""
    out: dict[str, Any] = {"line": rejection.index, "id": rejection.id, "reason": rejection.reason}
    if len(text) <= RAW_MAX:
        out["raw"] = text.decode("utf-8", "replace")
    else:
        out["raw"] = text[:RAW_MAX].decode("utf-8", "ignore")
        out["raw_truncated"] = True
        out["raw_bytes"] = len(text)
    return out


def _guess_id(line: bytes) -> str | None:
    try:
        return raw_id(decode(line))
    except ValueError:
        return None
