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

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from connectors import ComplaintsConnector, UpstreamFailure
from connectors.models import ChangesPage
from gateway.core.db import transaction
from gateway.core.models import SyncState
from gateway.core.state import get_state, set_state
from gateway.flags.alerts import deferred_alerts
from gateway.ingest.store import Rejection, ingest_raw
from gateway.units.models import OrgUnit

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
    sm: async_sessionmaker[AsyncSession], expected_cursor: str | None, page: ChangesPage
) -> list[Rejection]:
    """Records and the next cursor in one transaction; CursorMoved if the stored cursor is not the one the
    page was fetched with."""
    async with transaction(sm) as session:
        # FOR UPDATE (PostgreSQL) makes a concurrent sync wait here and then see the moved cursor.
        stored = (
            await session.execute(select(SyncState.value).where(SyncState.name == CURSOR).with_for_update())
        ).scalar_one_or_none()
        if stored != expected_cursor:
            raise CursorMoved(f"cursor moved from {expected_cursor!r} to {stored!r}")
        result = await ingest_raw(session, list(page.items), source="sync")
        if page.next_cursor != expected_cursor:
            await set_state(session, CURSOR, page.next_cursor)
    return result.rejected


async def sync_until_caught_up(
    sm: async_sessionmaker[AsyncSession],
    connector: ComplaintsConnector,
    *,
    limit: int = PAGE_SIZE,
    on_reject: Callable[[Rejection], None] = report_rejection,
    after_page: Callable[[SyncReport], Awaitable[None] | None] | None = None,
) -> SyncReport:
    """Pull pages from the stored cursor until the feed says there is nothing more. Upstream failures
    (UpstreamFailure) propagate; whatever was stored before them stays stored."""
    async with deferred_alerts(sm):  # a catch-up is a bulk load: judge early warning once, at its end
        return await _catch_up(sm, connector, limit=limit, on_reject=on_reject, after_page=after_page)


async def _catch_up(
    sm: async_sessionmaker[AsyncSession],
    connector: ComplaintsConnector,
    *,
    limit: int,
    on_reject: Callable[[Rejection], None],
    after_page: Callable[[SyncReport], Awaitable[None] | None] | None,
) -> SyncReport:
    report = SyncReport()
    started = time.monotonic()
    async with sm() as session:
        if (await session.execute(select(OrgUnit.code).limit(1))).first() is None:
            raise NoUnits("no org units loaded: run `gateway import-units FILE.csv` first")
        cursor = await get_state(session, CURSOR)
    page = await connector.changes(cursor, limit)
    while True:
        # Fetch the next page while this one is stored: the network and the database work overlap. The
        # next page is only stored after this one committed, so the order of the feed is kept.
        ahead = asyncio.ensure_future(connector.changes(page.next_cursor, limit)) if page.has_more else None
        try:
            rejected = await store_page(sm, cursor, page)
        except CursorMoved as exc:
            await _discard(ahead)
            log.warning("sync: %s; continuing from the stored cursor", exc)
            cursor = await read_cursor(sm)
            page = await connector.changes(cursor, limit)
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
        page = await ahead


async def _discard(task: asyncio.Future[ChangesPage] | None) -> None:
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
) -> None:
    """Keep following the feed: catch up, wait `interval_s`, again. An unavailable platform is logged and
    retried after the interval; nothing is lost, the cursor only moves with stored pages."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            report = await sync_until_caught_up(sm, connector, limit=limit)
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
