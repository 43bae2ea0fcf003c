"""`gateway import`: stream a JSON Lines file (optionally gzipped) into the store in batches.

A bad line is reported by line number and reason and skipped; nothing valid is lost because of it. Lines are
read in blocks, decoded by worker processes (`gateway.ingest.workers`) and stored a few blocks at a time, in
order, by this process (`gateway.ingest.store.store_chunk`): new records by COPY, known ones by the per-record path.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import sys
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tqdm import tqdm

from gateway.core.db import transaction
from gateway.flags.alerts import deferred_alerts
from gateway.ingest.metrics import count_rejected
from gateway.ingest.pipeline import Chunk, merge_chunks
from gateway.ingest.store import RECORDS_PER_TRANSACTION, Rejection, prepare_decoders, store_chunk
from gateway.ingest.workers import Decoders
from gateway.units.tree import UnitIndex

BLOCK = 1 << 20  # bytes of lines decoded together (about 1,000 records): small, so the workers start and end soon
WRITERS = 2  # transactions stored at once on PostgreSQL (each on its own connection)
RAW_MAX = 64 * 1024  # bytes of a rejected line copied into the rejects file


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


def _blocks(stream: IO[bytes], size: int) -> Iterator[tuple[int, bytes]]:
    """(number of the first line, whole lines of about `size` bytes); the last may lack its newline."""
    rest, line = b"", 1
    while True:
        try:
            data = stream.read(size)
        except (OSError, EOFError, zlib.error) as exc:
            raise UnreadableFile(f"file stopped being readable: {exc}") from None
        if not data:
            if rest:
                yield line, rest
            return
        data = rest + data if rest else data
        cut = data.rfind(b"\n") + 1
        if not cut:  # a line longer than `size`: read on
            rest = data
            continue
        block, rest = data[:cut], data[cut:]
        yield line, block
        line += block.count(b"\n")


async def import_file(
    sessionmaker: async_sessionmaker[AsyncSession],
    path: Path,
    rejects: IO[str] | None = None,
    progress: bool = True,
    decoders: Decoders | None = None,
    block_size: int = BLOCK,
    records_per_transaction: int = RECORDS_PER_TRANSACTION,
    writers: int | None = None,
) -> ImportReport:
    """Store every valid line of `path` (JSON Lines, optionally gzipped), in transactions of whole blocks of
    lines holding `records_per_transaction` records or more (the last one fewer); report each bad line
    (stderr, and `rejects` as JSON Lines). `decoders`: worker processes to decode in (default: decode in
    this process). `writers`: transactions stored at once (default: WRITERS on PostgreSQL, 1 on SQLite).
    Raises UnreadableFile when the file cannot be read."""
    own = decoders is None
    decoders = decoders or Decoders(0)
    try:
        async with deferred_alerts(sessionmaker):
            return await _import(sessionmaker, path, rejects, progress, decoders, block_size,
                                 records_per_transaction, writers)
    finally:
        if own:
            decoders.close()


async def _import(
    sessionmaker: async_sessionmaker[AsyncSession],
    path: Path,
    rejects: IO[str] | None,
    progress: bool,
    decoders: Decoders,
    block_size: int,
    records_per_transaction: int,
    writers: int | None,
) -> ImportReport:
    report = ImportReport()
    units = await prepare_decoders(sessionmaker, decoders)
    if writers is None:  # SQLite has one writer at a time whatever the connections
        assert decoders.context is not None
        writers = WRITERS if decoders.context.postgresql else 1
    size = path.stat().st_size if path.exists() else None
    with _open(path) as stream, tqdm(
        total=size, unit="B", unit_scale=True, desc=path.name, file=sys.stderr, disable=not progress
    ) as bar:
        raw_file: Any = getattr(stream, "fileobj", None) or stream
        last_pos = 0

        pending: list[Chunk] = []  # decoded blocks waiting to be stored together
        read_pos = 0  # bytes of the file behind the blocks written or pending
        # Transactions being stored, with their record ids. With several writers the database works on one
        # transaction's rows while another waits on its rollup rows; a transaction holding a record id of one
        # in flight waits for it first, so that copies of a record are stored in the file's order.
        in_flight: dict[asyncio.Future[int], set[str]] = {}

        async def store_one(chunk: Chunk, pos: int) -> int:
            result = await _store_retrying(sessionmaker, chunk, units)
            report.stored += len(chunk.metas)
            report.inserted += result.inserted
            report.updated += result.updated
            report.unchanged += result.unchanged
            report.stale += result.stale
            return pos

        async def settle(until: Callable[[], bool]) -> None:
            nonlocal last_pos
            while in_flight and not until():
                done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    del in_flight[task]
                    pos = task.result()  # a failure stops the import here (the others are awaited first)
                    if pos > last_pos:
                        bar.update(pos - last_pos)
                        last_pos = pos

        async def store() -> None:
            if not pending:
                return
            chunk = merge_chunks(pending)
            pending.clear()
            ids = {m.id for m in chunk.metas}
            await settle(lambda: len(in_flight) < writers and not any(ids & held for held in in_flight.values()))
            in_flight[asyncio.ensure_future(store_one(chunk, read_pos))] = ids

        async def write(decoding: asyncio.Future[Chunk], pos: int) -> None:
            nonlocal read_pos
            chunk = await decoding
            read_pos = pos
            report.lines = chunk.lines
            for (number, rid, reason), (start, stop) in zip(chunk.rejected, chunk.rejected_spans, strict=True):
                rejection = Rejection(number, rid, reason)
                report.rejected.append(rejection)
                count_rejected("import")
                bar.write(f"line {number}: {reason}", file=sys.stderr)
                if rejects is not None:
                    text = chunk.source[start:stop]
                    rejects.write(json.dumps(rejected_line(rejection, text), ensure_ascii=False) + "\n")
            if chunk.metas:
                pending.append(chunk)
            # Blocks are stored several to a transaction (RECORDS_PER_TRANSACTION says why).
            if sum(len(c.metas) for c in pending) >= records_per_transaction:
                await store()

        # Blocks are decoded ahead (by the workers) while the one before is written; written in order.
        ahead: deque[tuple[asyncio.Future[Chunk], int]] = deque()
        try:
            for first, block in _blocks(stream, block_size):
                ahead.append((decoders.block(first, block), raw_file.tell()))
                if len(ahead) > 2 * decoders.workers:
                    await write(*ahead.popleft())
            while ahead:
                await write(*ahead.popleft())
            await store()
            await settle(lambda: False)
        finally:
            for decoding, _ in ahead:
                decoding.cancel()
            if in_flight:  # after a failure: let the other transactions end (commit or roll back) first
                await asyncio.wait(in_flight)
    return report


# Transactions a deadlock or a serialization failure ended are run again, this many times at most.
_RETRIES = 3
_RETRIED_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure


async def _store_retrying(sessionmaker: async_sessionmaker[AsyncSession], chunk: Chunk, units: UnitIndex) -> Any:
    """`store_chunk` in a transaction of its own, run again when concurrent writers deadlocked (PostgreSQL
    detects it and ends one of them; nothing of it was committed)."""
    for attempt in range(_RETRIES + 1):
        try:
            async with transaction(sessionmaker) as session:
                return await store_chunk(session, chunk, units, source="import")
        except Exception as exc:
            if attempt == _RETRIES or _sqlstate(exc) not in _RETRIED_SQLSTATES:
                raise
    raise AssertionError("unreachable")


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, raised by asyncpg or wrapped by SQLAlchemy; None for others."""
    for candidate in (exc, getattr(exc, "orig", None), getattr(getattr(exc, "orig", None), "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


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
