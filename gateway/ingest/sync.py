"""`gateway sync`: follow the complaint platform's changes feed into the store.

Pages are stored a few at a time (about `RECORDS_PER_TRANSACTION` records), each transaction together with
the cursor that follows its last page, so after a crash or a restart the sync resumes exactly after the last
stored page: a page is either wholly in (records and cursor) or not at all, and re-reading a page that was
not committed stores nothing twice (ingestion is idempotent by record id and event id). Pages are fetched
before the transaction opens, so no database transaction waits on the network. Records that break
records.md are reported on stderr and skipped.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from connectors import ComplaintsConnector, UpstreamFailure
from connectors.models import ChangesPage
from gateway.core.db import transaction
from gateway.core.models import SyncState
from gateway.core.state import get_state, set_state
from gateway.flags.alerts import deferred_alerts
from gateway.ingest.metrics import count_on_commit
from gateway.ingest.pipeline import Chunk, merge_chunks
from gateway.ingest.store import RECORDS_PER_TRANSACTION, Rejection, prepare_decoders, store_chunk
from gateway.ingest.workers import Decoders
from gateway.units.models import OrgUnit
from gateway.units.tree import UnitIndex

log = logging.getLogger(__name__)

CURSOR = "complaints.changes.cursor"  # the sync_state row holding the feed cursor
PAGE_SIZE = 1000


class NoUnits(Exception):
    """No org units are loaded: every record would be rejected and the cursor would move past them all."""


class CursorMoved(Exception):
    """Another sync stored a page since this one read the cursor: this page is dropped, not stored twice."""


@dataclass
class SyncReport:
    pages: int = 0
    received: int = 0
    stored: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    cursor: str | None = None
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"pages {self.pages}: received {self.received}, stored {self.stored}, "
            f"rejected {len(self.rejected)}"
        )


def report_rejection(rejection: Rejection) -> None:
    """Print one rejected record of the feed on standard error."""
    print(f"gateway sync: rejected record {rejection.id or '(no id)'}: {rejection.reason}", file=sys.stderr)


async def read_cursor(sm: async_sessionmaker[AsyncSession]) -> str | None:
    """The stored cursor of the platform's changes feed, or None before the first page."""
    async with sm() as session:
        return await get_state(session, CURSOR)


async def store_pages(
    sm: async_sessionmaker[AsyncSession],
    expected_cursor: str | None,
    pages: Sequence[tuple[ChangesPage, Chunk]],
    units: UnitIndex,
) -> list[list[Rejection]]:
    """Consecutive pages (each with its items decoded, `Decoders.items`) and the cursor after the last one,
    in one transaction; CursorMoved if the stored cursor is not the one the first page was fetched with.
    Returns each page's rejections (positions in its items)."""
    async with transaction(sm) as session:
        # FOR UPDATE (PostgreSQL) makes a concurrent sync wait here and then see the moved cursor.
        stored = (
            await session.execute(select(SyncState.value).where(SyncState.name == CURSOR).with_for_update())
        ).scalar_one_or_none()
        if stored != expected_cursor:
            raise CursorMoved(f"cursor moved from {expected_cursor!r} to {stored!r}")
        rejected = [[Rejection(i, rid, reason) for i, rid, reason in chunk.rejected] for _, chunk in pages]
        count_on_commit(session, "sync", "rejected", sum(map(len, rejected)))
        await store_chunk(session, merge_chunks([chunk for _, chunk in pages]), units, source="sync")
        next_cursor = pages[-1][0].next_cursor
        if next_cursor != expected_cursor:
            await set_state(session, CURSOR, next_cursor)
    return rejected


async def sync_until_caught_up(
    sm: async_sessionmaker[AsyncSession],
    connector: ComplaintsConnector,
    *,
    limit: int = PAGE_SIZE,
    on_reject: Callable[[Rejection], None] = report_rejection,
    after_page: Callable[[SyncReport], Awaitable[None] | None] | None = None,
    decoders: Decoders | None = None,
    records_per_transaction: int = RECORDS_PER_TRANSACTION,
) -> SyncReport:
    """Pull pages from the stored cursor until the feed says there is nothing more. Pages are stored several
    to a transaction, until they hold `records_per_transaction` items (the cursor moves with each
    transaction; `after_page` is called after each). Upstream failures (UpstreamFailure) propagate after the
    pages fetched before them are stored. `decoders`: worker processes that decode the pages (default:
    decoded in this process)."""
    own = decoders is None
    decoders = decoders or Decoders(0)
    try:
        async with deferred_alerts(sm):  # a catch-up is a bulk load: judge early warning once, at its end
            return await _catch_up(
                sm, connector, limit=limit, on_reject=on_reject, after_page=after_page, decoders=decoders,
                records_per_transaction=records_per_transaction,
            )
    finally:
        if own:
            decoders.close()


async def _catch_up(
    sm: async_sessionmaker[AsyncSession],
    connector: ComplaintsConnector,
    *,
    limit: int,
    on_reject: Callable[[Rejection], None],
    after_page: Callable[[SyncReport], Awaitable[None] | None] | None,
    decoders: Decoders,
    records_per_transaction: int,
) -> SyncReport:
    report = SyncReport()
    started = time.monotonic()
    async with sm() as session:
        if (await session.execute(select(OrgUnit.code).limit(1))).first() is None:
            raise NoUnits("no org units loaded: run `gateway import-units FILE.csv` first")
        cursor = await get_state(session, CURSOR)
    units = await prepare_decoders(sm, decoders)
    per_transaction = max(1, -(-records_per_transaction // max(1, limit)))  # pages, rounded up
    while True:
        # Pages are fetched (and decoded) ahead while earlier ones are stored: the network, the workers and
        # the database work at once. They are stored in the feed's order, each transaction after the last.
        fetched: asyncio.Queue[_Fetched] = asyncio.Queue(maxsize=per_transaction + 1)
        fetcher = asyncio.ensure_future(_fetch_pages(connector, decoders, cursor, limit, fetched))
        try:
            while True:
                group, end = await _next_group(fetched, records_per_transaction)
                if group:
                    chunks = [(page, await decoding) for page, decoding in group]
                    try:
                        rejected = await store_pages(sm, cursor, chunks, units)
                    except CursorMoved as exc:
                        log.warning("sync: %s; continuing from the stored cursor", exc)
                        cursor = await read_cursor(sm)
                        break
                    cursor = group[-1][0].next_cursor
                    for (page, _), page_rejected in zip(group, rejected, strict=True):
                        for rejection in page_rejected:
                            on_reject(rejection)
                        report.pages += 1
                        report.received += len(page.items)
                        report.stored += len(page.items) - len(page_rejected)
                        report.rejected += page_rejected
                    report.cursor = cursor
                    report.seconds = time.monotonic() - started
                    if after_page is not None:
                        maybe = after_page(report)
                        if maybe is not None:
                            await maybe
                if isinstance(end, BaseException):
                    raise end
                if end is _LAST:
                    return report
        finally:
            await _discard(fetcher)


_LAST = object()  # the feed said it has no more
_Fetched = tuple[ChangesPage, "asyncio.Future[Chunk]"] | BaseException | object


async def _fetch_pages(
    connector: ComplaintsConnector, decoders: Decoders, cursor: str | None, limit: int,
    out: asyncio.Queue[_Fetched],
) -> None:
    """Pages from `cursor` on into `out`, each decoding as soon as it is here; then _LAST, or the failure
    that stopped it."""
    try:
        while True:
            page = await connector.changes_raw(cursor, limit)
            await out.put((page, decoders.items(page.items)))
            if not page.has_more:
                await out.put(_LAST)
                return
            cursor = page.next_cursor
    except Exception as exc:  # noqa: BLE001 - raised by the consumer, after what came before is stored
        await out.put(exc)


async def _next_group(
    fetched: asyncio.Queue[_Fetched], records: int
) -> tuple[list[tuple[ChangesPage, asyncio.Future[Chunk]]], object | None]:
    """Pages to store together: until they hold `records` items, the feed's end, or a failure (also
    returned, as the second element, with whatever came before it); None when neither came."""
    group: list[tuple[ChangesPage, asyncio.Future[Chunk]]] = []
    held = 0
    while held < records:
        item = await fetched.get()
        if not isinstance(item, tuple):
            return group, item
        group.append(item)
        held += len(item[0].items)
    return group, None


async def _discard(task: asyncio.Future[Any] | None) -> None:
    if task is not None:
        task.cancel()
        try:
            await task
        except BaseException:  # noqa: BLE001 - its result or failure no longer matters
            pass


async def run_forever(
    sm: async_sessionmaker[AsyncSession],
    connector: ComplaintsConnector,
    *,
    interval_s: float = 5.0,
    limit: int = PAGE_SIZE,
    stop: asyncio.Event | None = None,
    decoders: Decoders | None = None,
    records_per_transaction: int = RECORDS_PER_TRANSACTION,
) -> None:
    """Keep following the feed: catch up, wait `interval_s`, again. An unavailable platform is logged and
    retried after the interval; nothing is lost, the cursor only moves with stored pages."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            report = await sync_until_caught_up(sm, connector, limit=limit, decoders=decoders,
                                                records_per_transaction=records_per_transaction)
            if report.received:
                print(f"gateway sync: {report.summary()}", file=sys.stderr)
        except UpstreamFailure as exc:
            print(f"gateway sync: {exc.code} {exc}; retrying in {interval_s:g}s", file=sys.stderr)
        except NoUnits as exc:
            print(f"gateway sync: {exc}; retrying in {interval_s:g}s", file=sys.stderr)
        try:
            await asyncio.wait_for(stop.wait(), interval_s)
        except TimeoutError:
            pass
