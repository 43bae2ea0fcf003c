"""One replica's listener of the live feed, fanning alerts out to this process's subscribers.

Alerts reach every replica through the database, never through one process's memory (supervision.md):

- PostgreSQL: one connection per process runs `LISTEN` on the schema's channel (`gateway.core.feed`). A
  notification (sent at the publisher's commit) carries the relay row's id; the listener reads the rows in
  batches and hands each to the subscribers whose filter accepts it. If the connection drops, the listener
  reconnects and re-reads the rows written since shortly before the drop, skipping those it delivered.
- SQLite (one host): no notifications; the listener polls the relay table every POLL_S seconds for ids above
  the last it read. SQLite's single writer commits ids in order, so nothing is skipped. Several processes on
  one SQLite file each poll and so each hear everything.

The listener starts with the first subscriber and stops with the application. A subscriber's queue holds
QUEUE_MAX alerts; one that falls that far behind loses the overflow (counted, logged) rather than slowing
everyone else — the spec's record of alerts is `alerts` and `supervisionOrders`, not the feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gateway.core.feed import CHANNEL_SQL, FeedAlert, alerts_after, alerts_by_id, alerts_since, last_alert_id
from gateway.units.cache import UnitCache
from gateway.units.jurisdiction import unit_ancestors

log = logging.getLogger(__name__)

SUBSCRIBERS = Gauge("gateway_feed_subscribers", "Live-feed subscriptions open", multiprocess_mode="livesum")
DELIVERED = Counter("gateway_feed_alerts_delivered", "Alerts queued to live-feed subscribers of this process")
DROPPED = Counter("gateway_feed_alerts_dropped", "Alerts a live-feed subscriber fell too far behind to receive")


@dataclass(frozen=True, slots=True)
class PlacedAlert:
    """An alert with the ancestors (levels 1..5) of its unit, for jurisdiction tests without a query."""

    alert: FeedAlert
    ancestors: tuple[str | None, ...]


Accept = Callable[[PlacedAlert], bool]
_END = object()


class Subscription:
    """An async iterator of the alerts one subscriber accepts; `aclose()` ends it and unregisters it."""

    def __init__(self, hub: AlertHub, accept: Accept, size: int) -> None:
        self.hub, self.accept = hub, accept
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=size)
        self.dropped = 0

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> FeedAlert:
        item = await self.queue.get()
        if item is _END:
            raise StopAsyncIteration
        alert: FeedAlert = item
        return alert

    def offer(self, placed: PlacedAlert) -> None:
        try:
            if self.accept(placed):
                self.queue.put_nowait(placed.alert)
                DELIVERED.inc()
        except asyncio.QueueFull:
            self.dropped += 1
            DROPPED.inc()
            if self.dropped in (1, 100, 10_000):
                log.warning("a live-feed subscriber is %d alerts behind; dropped %d", self.queue.qsize(), self.dropped)

    def end(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(_END)

    async def aclose(self) -> None:
        self.hub.unsubscribe(self)


class AlertHub:
    POLL_S = 0.2  # SQLite: how often the relay table is read
    RECONNECT_S = 1.0  # PostgreSQL: wait before listening again after the connection dropped
    PING_S = 30.0  # PostgreSQL: how often an idle listening connection is checked
    READY_S = 10.0  # how long a first subscriber waits for the listener to be ready
    CATCH_UP = timedelta(seconds=10)  # re-read this far before a drop (commits in flight, clock steps)
    QUEUE_MAX = 1000
    SEEN_MAX = 10_000  # ids remembered to skip re-reads

    def __init__(self, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], units: UnitCache) -> None:
        self.engine, self.sessionmaker, self.units = engine, sessionmaker, units
        self.subscribers: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._lock = asyncio.Lock()
        self._pending: list[int] = []
        self._wake = asyncio.Event()
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._dropped_at: datetime | None = None  # when the last listening connection was lost

    # --------------------------------------------------------------------------------------- subscribers

    async def subscribe(self, accept: Accept) -> Subscription:
        """Start listening if this is the first subscriber; from the moment this returns, every alert that
        commits and that `accept` takes is queued to the returned subscription."""
        await self.start()
        sub = Subscription(self, accept, self.QUEUE_MAX)
        self.subscribers.add(sub)
        SUBSCRIBERS.inc()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self.subscribers:
            self.subscribers.discard(sub)
            SUBSCRIBERS.dec()
        sub.end()

    # ---------------------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        async with self._lock:
            if self._task is None:
                run = self._listen if self.engine.dialect.name == "postgresql" else self._poll
                self._task = asyncio.create_task(run(), name="alert-feed")
        if self._ready.is_set():
            return
        waiter = asyncio.ensure_future(self._ready.wait())
        await asyncio.wait({waiter, self._task}, timeout=self.READY_S, return_when=asyncio.FIRST_COMPLETED)
        if not waiter.done():
            waiter.cancel()
            if self._task.done():
                self._task.result()  # the listener died before it was ready: say why
            raise RuntimeError("the live feed is not listening (is the database reachable?)")

    async def stop(self) -> None:
        """Stop listening and end every subscription (their streams complete)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for sub in list(self.subscribers):
            self.unsubscribe(sub)

    # -------------------------------------------------------------------------------------------- fan-out

    async def _deliver(self, alerts: list[FeedAlert]) -> None:
        for alert in alerts:
            if alert.id in self._seen:
                continue
            self._seen[alert.id] = None
            if len(self._seen) > self.SEEN_MAX:
                self._seen.popitem(last=False)
            unit = await self.units.get(alert.unit)
            if unit is None:
                log.warning("live feed: alert %d names unknown unit %s; not delivered", alert.id, alert.unit)
                continue
            placed = PlacedAlert(alert, unit_ancestors(unit))
            for sub in list(self.subscribers):
                sub.offer(placed)

    # --------------------------------------------------------------------------------------------- SQLite

    async def _poll(self) -> None:
        async with self.sessionmaker() as session:
            last = await last_alert_id(session)
        self._ready.set()
        while True:
            await asyncio.sleep(self.POLL_S)
            try:
                async with self.sessionmaker() as session:
                    alerts = await alerts_after(session, last)
                if alerts:
                    last = alerts[-1].id
                    await self._deliver(alerts)
            except Exception:  # a locked or briefly unreachable database must not end the feed
                log.exception("live feed: polling the relay failed")

    # ----------------------------------------------------------------------------------------- PostgreSQL

    def _on_notify(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        try:
            self._pending.extend(int(part) for part in payload.split(","))
        except ValueError:
            log.warning("live feed: notification payload %r is not a relay id", payload[:40])
            return
        self._wake.set()

    async def _read_notified(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            ids, self._pending = self._pending, []
            try:
                async with self.sessionmaker() as session:
                    alerts = await alerts_by_id(session, ids)
                await self._deliver(alerts)
            except Exception:
                log.exception("live feed: reading notified alerts failed")

    async def _listen(self) -> None:
        reader = asyncio.create_task(self._read_notified(), name="alert-feed-reader")
        try:
            while True:
                try:
                    await self._listen_once()
                except Exception:
                    log.exception("live feed: listening failed; listening again in %.0f s", self.RECONNECT_S)
                await asyncio.sleep(self.RECONNECT_S)
        finally:
            reader.cancel()

    async def _listen_once(self) -> None:
        """Listen until the connection is lost (or stops answering)."""
        conn = await self.engine.connect()
        try:
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            channel = await raw.fetchval(f"SELECT {CHANNEL_SQL}")
            lost = asyncio.Event()
            raw.add_termination_listener(lambda _c: lost.set())
            await raw.add_listener(channel, self._on_notify)
            if self._dropped_at is not None:  # what committed while no one here was listening
                async with self.sessionmaker() as session:
                    await self._deliver(await alerts_since(session, self._dropped_at - self.CATCH_UP))
            self._ready.set()
            try:
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), self.PING_S)
                    if not lost.is_set():  # an idle socket may be dead without anyone noticing: ask
                        await asyncio.wait_for(raw.fetchval("SELECT 1"), self.PING_S)
            finally:
                self._dropped_at = datetime.now(UTC)
        finally:
            # Never hand a connection that listens back to the pool: close it.
            with contextlib.suppress(Exception):
                await conn.invalidate()
            with contextlib.suppress(Exception):
                await conn.close()
