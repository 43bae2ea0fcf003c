"""`gateway sync`: follow the complaint platform's changes feed into the store.

Each page is stored in one transaction together with the cursor that follows it, so after a crash or a
restart the sync resumes exactly after the last stored page: a page is either wholly in (records and
cursor) or not at all, and re-reading a page that was not committed stores nothing twice (ingestion is
idempotent by record id and event id). The page is fetched before the transaction opens, so no database
transaction waits on the network. Records that break records.md are reported on stderr and skipped.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable
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
from gateway.ingest.pipeline import Chunk
from gateway.ingest.store import Rejection, ingest_raw, prepare_decoders, store_chunk
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


async def store_page(
    sm: async_sessionmaker[AsyncSession],
    expected_cursor: str | None,
    page: ChangesPage,
    chunk: Chunk | None = None,
    units: UnitIndex | None = None,
) -> list[Rejection]:
    """Records and the next cursor in one transaction; CursorMoved if the stored cursor is not the one the
    page was fetched with. `chunk`: the page's items decoded already (`Decoders.items`), with `units`."""
    async with transaction(sm) as session:
        # FOR UPDATE (PostgreSQL) makes a concurrent sync wait here and then see the moved cursor.
        stored = (
            await session.execute(select(SyncState.value).where(SyncState.name == CURSOR).with_for_update())
        ).scalar_one_or_none()
        if stored != expected_cursor:
            raise CursorMoved(f"cursor moved from {expected_cursor!r} to {stored!r}")
        if chunk is None or units is None:
            rejected = (await ingest_raw(session, list(page.items), source="sync")).rejected
        else:
            count_on_commit(session, "sync", "rejected", len(chunk.rejected))
            await store_chunk(session, chunk, units, source="sync")
            rejected = [Rejection(i, rid, reason) for i, rid, reason in chunk.rejected]
        if page.next_cursor != expected_cursor:
            await set_state(session, CURSOR, page.next_cursor)
    return rejected


async def sync_until_caught_up(
    sm: async_sessionmaker[AsyncSession],
    connector: ComplaintsConnector,
    *,
    limit: int = PAGE_SIZE,
    on_reject: Callable[[Rejection], None] = report_rejection,
    after_page: Callable[[SyncReport], Awaitable[None] | None] | None = None,
    decoders: Decoders | None = None,
) -> SyncReport:
    """Pull pages from the stored cursor until the feed says there is nothing more. Upstream failures
    (UpstreamFailure) propagate; whatever was stored before them stays stored. `decoders`: worker processes
    that decode the pages (default: decoded in this process)."""
    own = decoders is None
    decoders = decoders or Decoders(0)
    try:
        async with deferred_alerts(sm):  # a catch-up is a bulk load: judge early warning once, at its end
            return await _catch_up(
                sm, connector, limit=limit, on_reject=on_reject, after_page=after_page, decoders=decoders
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
) -> SyncReport:
    report = SyncReport()
    started = time.monotonic()
    async with sm() as session:
        if (await session.execute(select(OrgUnit.code).limit(1))).first() is None:
            raise NoUnits("no org units loaded: run `gateway import-units FILE.csv` first")
        cursor = await get_state(session, CURSOR)
    units = await prepare_decoders(sm, decoders)

    async def fetch(after: str | None) -> tuple[ChangesPage, asyncio.Future[Chunk]]:
        page = await connector.changes_raw(after, limit)
        return page, decoders.items(page.items)  # decoding starts as soon as the page is here

    page, decoding = await fetch(cursor)
    while True:
        # Fetch (and decode) the next page while this one is stored: the network, the workers and the
        # database work at once. The next page is only stored after this one committed: the feed's order.
        ahead = asyncio.ensure_future(fetch(page.next_cursor)) if page.has_more else None
        try:
            rejected = await store_page(sm, cursor, page, await decoding, units)
        except CursorMoved as exc:
            await _discard(ahead)
            log.warning("sync: %s; continuing from the stored cursor", exc)
            cursor = await read_cursor(sm)
            page, decoding = await fetch(cursor)
            continue
        except BaseException:
            await _discard(ahead)
            raise
        for rejection in rejected:
            on_reject(rejection)
        cursor = page.next_cursor
        report.pages += 1
        report.received += len(page.items)
        report.stored += len(page.items) - len(rejected)
        report.rejected += rejected
        report.cursor = cursor
        report.seconds = time.monotonic() - started
        try:
            if after_page is not None:
                maybe = after_page(report)
                if maybe is not None:
                    await maybe
        except BaseException:
            await _discard(ahead)
            raise
        if ahead is None:
            return report
        page, decoding = await ahead


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
) -> None:
    """Keep following the feed: catch up, wait `interval_s`, again. An unavailable platform is logged and
    retried after the interval; nothing is lost, the cursor only moves with stored pages."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            report = await sync_until_caught_up(sm, connector, limit=limit, decoders=decoders)
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
