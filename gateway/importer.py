"""`gateway import`: stream a JSON Lines file (optionally gzipped) into the store in batches.

A bad line is reported by line number and reason and skipped; nothing valid is lost because of it.
"""

from __future__ import annotations

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

from gateway.db import transaction
from gateway.ingest import Rejection, upsert_records, validate_raw
from gateway.records import ComplaintIn
from gateway.units import load_units

BATCH = 1000


class UnreadableFile(Exception):
    """The file could not be read at all (exit code 2)."""


@dataclass
class ImportReport:
    lines: int = 0
    stored: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
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
        for number, line in enumerate(stream, start=1):
            yield number, line
    except (OSError, EOFError, zlib.error) as exc:
        raise UnreadableFile(f"file stopped being readable: {exc}") from None


async def import_file(
    sessionmaker: async_sessionmaker[AsyncSession],
    path: Path,
    rejects: IO[str] | None = None,
    progress: bool = True,
    batch_size: int = BATCH,
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
        last_pos = 0

        async def flush() -> None:
            nonlocal batch, last_pos
            if batch:
                async with transaction(sessionmaker) as session:
                    result = await upsert_records(session, batch, units)
                report.stored += len(batch)
                report.inserted += result.inserted
                report.updated += result.updated
                report.unchanged += result.unchanged
                batch = []
            pos = raw_file.tell()
            bar.update(pos - last_pos)
            last_pos = pos

        for number, line in _lines(stream):
            report.lines = number
            if not line.strip():
                continue
            try:
                batch.append(validate_raw(line, units))
            except ValueError as exc:
                rejection = Rejection(number, _guess_id(line), str(exc))
                report.rejected.append(rejection)
                bar.write(f"line {number}: {rejection.reason}", file=sys.stderr)
                if rejects is not None:
                    rejects.write(
                        json.dumps(
                            {"line": number, "id": rejection.id, "reason": rejection.reason,
                             "raw": line.decode("utf-8", "replace").rstrip("\n")},
                            ensure_ascii=False,
                        ) + "\n"
                    )
            if len(batch) >= batch_size:
                await flush()
        await flush()
    return report


def _guess_id(line: bytes) -> str | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    rid = value.get("id") if isinstance(value, dict) else None
    return rid if isinstance(rid, str) else None
