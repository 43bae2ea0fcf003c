"""Delivering the outbox: complaint flags to the credit system, incidents to the emergency-command system.

Each pass claims a batch of due items with a lease (an atomic UPDATE … RETURNING; on PostgreSQL its row
choice is SELECT … FOR UPDATE SKIP LOCKED, so concurrent dispatchers take disjoint rows; SQLite serialises
writers, so the one statement is atomic there), commits the claim, sends each item with its key as
Idempotency-Key, and marks the outcomes in a second transaction. A dispatcher that dies anywhere leaves at
worst leased rows: when the lease runs out, any dispatcher sends them again, with the same key and the very
same payload (frozen at the first claim), and the receiver answers with its first result instead of acting
twice. So the receiver ends with each item exactly once, and nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from connectors import UpstreamError, UpstreamFailure, UpstreamNotConfigured, UpstreamUnavailable
from gateway.core.bulk import insert_ignoring_duplicates
from gateway.core.db import transaction
from gateway.core.time import as_utc
from gateway.flags.metrics import DELIVERIES, OUTBOX_FAILED, OUTBOX_OLDEST_AGE, OUTBOX_PENDING
from gateway.flags.models import CREDIT, DELIVERED, EMERGENCY, FAILED, PENDING, IncidentLink, OutboxItem

log = logging.getLogger(__name__)

# Sends one item's payload under its idempotency key; returns the receipt to keep. Raises UpstreamFailure.
Sender = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]

# delivered; unavailable: tried again later (down, overloaded, or an answer that broke the contract);
# error: refused for good, parked as FAILED (a dead letter); config: credentials or URL refused, tried later.
OUTCOMES = ("delivered", "unavailable", "error", "config")
KINDS = {CREDIT: "flag", EMERGENCY: "incident"}  # what an outbox item of each system delivers


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    batch: int = 100  # items claimed at once per system
    concurrency: int = 16  # requests in flight per system
    lease_s: float = 60.0  # longer than a batch takes to send; a dead dispatcher's items wait this long
    interval_s: float = 1.0  # idle poll interval of the background loop
    backoff_base_s: float = 1.0  # wait before the 2nd attempt of an item; doubles per attempt, full jitter
    backoff_max_s: float = 300.0


@dataclass(slots=True)
class PassReport:
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)  # system -> outcome -> count
    last_errors: dict[str, str] = field(default_factory=dict)

    def add(self, system: str, outcome: str, n: int = 1) -> None:
        self.outcomes.setdefault(system, {}).setdefault(outcome, 0)
        self.outcomes[system][outcome] += n

    def count(self, outcome: str) -> int:
        return sum(o.get(outcome, 0) for o in self.outcomes.values())


@dataclass(slots=True)
class _Result:
    key: str
    outcome: str
    attempts: int
    receipt: dict[str, Any] | None = None
    error: str | None = None


def backoff(attempts: int, cfg: DispatchConfig, rng: random.Random) -> float:
    """Seconds to wait after the `attempts`-th failed attempt: full jitter over an exponential window."""
    window = min(cfg.backoff_max_s, cfg.backoff_base_s * 2 ** min(attempts - 1, 30))
    return max(cfg.backoff_base_s / 10, rng.uniform(0, window))


class Dispatcher:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        senders: dict[str, Sender],
        config: DispatchConfig | None = None,
        owner: str | None = None,
    ) -> None:
        self.sm = sessionmaker
        self.senders = senders
        self.cfg = config or DispatchConfig()
        self.owner = owner or f"dispatcher-{uuid.uuid4().hex[:12]}"
        self.rng = random.Random()

    # ------------------------------------------------------------------------------------------- passes

    async def run_pass(self, due_by: datetime | None = None) -> PassReport:
        """Deliver every item due by `due_by` (default: now), batch by batch, per system concurrently.

        Items that fail are rescheduled after `due_by`, so a pass always ends."""
        due_by = due_by or datetime.now(UTC)
        report = PassReport()
        await asyncio.gather(*(self._drain(system, due_by, report) for system in self.senders))
        await self.update_gauges()
        return report

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Pass after pass until `stop` is set; sleeps `interval_s` when a pass found nothing to do."""
        while not stop.is_set():
            try:
                report = await self.run_pass()
                busy = any(report.outcomes.values())
            except Exception:  # the database away for a moment must not end the loop; log and retry
                log.exception("outbox pass failed")
                busy = False
            if not busy:
                try:
                    await asyncio.wait_for(stop.wait(), self.cfg.interval_s)
                except TimeoutError:
                    pass

    async def _drain(self, system: str, due_by: datetime, report: PassReport) -> None:
        while True:
            claimed = await self.claim(system, due_by)
            if not claimed:
                return
            results = await self._send_all(system, claimed)
            await self.mark(system, results)
            for r in results:
                report.add(system, r.outcome)
                DELIVERIES.labels(system, r.outcome).inc()
                if r.error:
                    report.last_errors[system] = r.error
            if all(r.outcome == "config" for r in results):
                return  # no point sending more with credentials the system refuses

    # ------------------------------------------------------------------------------------------- claim

    async def claim(self, system: str, due_by: datetime) -> list[tuple[str, dict[str, Any], int]]:
        """Lease up to `batch` due items of `system` to this dispatcher: (key, payload, attempts) each."""
        now = datetime.now(UTC)
        async with transaction(self.sm) as session:
            due = (
                select(OutboxItem.key)
                .where(
                    OutboxItem.system == system,
                    OutboxItem.state == PENDING,
                    OutboxItem.next_attempt_at <= due_by,
                    (OutboxItem.lease_until.is_(None)) | (OutboxItem.lease_until < now),
                )
                .order_by(OutboxItem.next_attempt_at)
                .limit(self.cfg.batch)
            )
            if session.get_bind().dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            rows = await session.execute(
                update(OutboxItem)
                .where(OutboxItem.system == system, OutboxItem.key.in_(due.scalar_subquery()))
                .values(
                    lease_owner=self.owner,
                    lease_until=now + timedelta(seconds=self.cfg.lease_s),
                    attempts=OutboxItem.attempts + 1,
                    first_attempt_at=func.coalesce(OutboxItem.first_attempt_at, now),  # freezes the payload
                )
                .returning(OutboxItem.key, OutboxItem.payload, OutboxItem.attempts)
                .execution_options(synchronize_session=False)
            )
            return [(r.key, r.payload, r.attempts) for r in rows.all()]

    # ------------------------------------------------------------------------------------------- send

    async def _send_all(self, system: str, claimed: list[tuple[str, dict[str, Any], int]]) -> list[_Result]:
        send = self.senders[system]
        gate = asyncio.Semaphore(self.cfg.concurrency)

        async def one(key: str, payload: dict[str, Any], attempts: int) -> _Result:
            async with gate:
                try:
                    receipt = await send(key, payload)
                except UpstreamNotConfigured as exc:
                    return _Result(key, "config", attempts, error=str(exc))
                except UpstreamError as exc:
                    # Only a refusal of the request itself is for good; a broken answer or an odd status
                    # says the system is sick, and the same key makes a later try safe.
                    outcome = "config" if exc.config_fault else "error" if exc.refused else "unavailable"
                    return _Result(key, outcome, attempts, error=str(exc))
                except (UpstreamUnavailable, UpstreamFailure) as exc:
                    return _Result(key, "unavailable", attempts, error=str(exc))
                except ValueError as exc:  # a payload the contract model refuses: our bug, park it
                    return _Result(key, "error", attempts, error=f"payload: {str(exc)[:500]}")
                except Exception as exc:  # noqa: BLE001 - never leave an item leased with nothing recorded
                    log.exception("outbox %s %s: unexpected failure", system, key)
                    return _Result(key, "unavailable", attempts, error=f"unexpected failure: {type(exc).__name__}")
                return _Result(key, "delivered", attempts, receipt=receipt)

        return list(await asyncio.gather(*(one(*c) for c in claimed)))

    # ------------------------------------------------------------------------------------------- mark

    async def mark(self, system: str, results: list[_Result]) -> None:
        """Record the outcomes of one batch of `system` in one transaction: delivered (receipt kept, incidents linked),
        retried later (next attempt after a backoff; bad credentials after the longest one) or FAILED (refused: an
        operator must look). Leases are released.
        """
        now = datetime.now(UTC)
        t = OutboxItem.__table__
        assert isinstance(t, Table)
        where = (t.c.system == system) & (t.c.key == bindparam("k")) & (t.c.state == PENDING)
        delivered = [{"k": r.key, "receipt": r.receipt} for r in results if r.outcome == "delivered"]
        retry = [
            {
                "k": r.key,
                "next_at": now + timedelta(
                    seconds=self.cfg.backoff_max_s if r.outcome == "config" else backoff(r.attempts, self.cfg, self.rng)
                ),
                "err": r.error,
            }
            for r in results
            if r.outcome in ("unavailable", "config")
        ]
        failed = [{"k": r.key, "err": r.error} for r in results if r.outcome == "error"]
        async with transaction(self.sm) as session:
            conn = await session.connection()
            if delivered:
                await conn.execute(
                    t.update().where(where).values(
                        state=DELIVERED, delivered_at=now, receipt=bindparam("receipt"), last_error=None,
                        lease_owner=None, lease_until=None,
                    ),
                    delivered,
                )
                if system == EMERGENCY:
                    await _link_incidents(session, [r for r in results if r.outcome == "delivered"], now)
            if retry:
                await conn.execute(
                    t.update().where(where).values(
                        next_attempt_at=bindparam("next_at"), last_error=bindparam("err"), lease_owner=None,
                        lease_until=None,
                    ),
                    retry,
                )
            if failed:
                # The system refused the request itself (4xx): resending the same body cannot help.
                await conn.execute(
                    t.update().where(where).values(
                        state=FAILED, last_error=bindparam("err"), failed_at=now, lease_owner=None, lease_until=None
                    ),
                    failed,
                )
        for r in results:
            if r.outcome == "error":
                log.error("outbox %s %s refused: %s", system, r.key, r.error)

    async def unleased_pending(self) -> int:
        """Items not delivered and not being sent by a live dispatcher: failed for now, or not yet tried."""
        now = datetime.now(UTC)
        async with self.sm() as session:
            found = await session.execute(
                select(func.count()).where(
                    OutboxItem.state == PENDING,
                    (OutboxItem.lease_until.is_(None)) | (OutboxItem.lease_until < now),
                )
            )
            return int(found.scalar_one())

    # ------------------------------------------------------------------------------------------- gauges

    async def update_gauges(self) -> dict[str, tuple[int, float]]:
        """Backlog and age of the oldest pending item per system, as `refresh_outbox_gauges`."""
        return await refresh_outbox_gauges(self.sm, self.senders)


async def refresh_outbox_gauges(
    sm: async_sessionmaker[AsyncSession], systems: Iterable[str] = (CREDIT, EMERGENCY)
) -> dict[str, tuple[int, float]]:
    """Backlog (PENDING items) and age of the oldest one, per system, and the dead letters (FAILED items);
    also set on the Prometheus gauges. Read from the database, so any process (an API replica at scrape
    time, a dispatcher) reports the same."""
    now = datetime.now(UTC)
    async with sm() as session:
        rows = await session.execute(
            select(OutboxItem.system, func.count(), func.min(OutboxItem.created_at))
            .where(OutboxItem.state == PENDING)
            .group_by(OutboxItem.system)
        )
        found = {s: (n, oldest) for s, n, oldest in rows.all()}
        dead = await session.execute(
            select(OutboxItem.system, func.count()).where(OutboxItem.state == FAILED).group_by(OutboxItem.system)
        )
        failed: dict[str, int] = {s: n for s, n in dead.all()}
    out: dict[str, tuple[int, float]] = {}
    for system in {*systems, *found, *failed}:
        n, oldest = found.get(system, (0, None))
        age = (now - as_utc(oldest)).total_seconds() if oldest is not None else 0.0
        OUTBOX_PENDING.labels(system).set(n)
        OUTBOX_OLDEST_AGE.labels(system).set(max(age, 0.0))
        OUTBOX_FAILED.labels(system).set(failed.get(system, 0))
        out[system] = (n, age)
    return out


# ---------------------------------------------------------------------------------------------- dead letters


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A delivery a system refused for good: `id` is its outbox key (the flag_id of a flag, the record id of
    an incident), `kind` "flag" or "incident"."""

    id: str
    system: str
    kind: str
    attempts: int
    last_error: str | None
    failed_at: datetime | None


async def dead_letters(sm: async_sessionmaker[AsyncSession], system: str | None = None) -> list[DeadLetter]:
    """Every FAILED item (of `system`, or of all), oldest failure first."""
    query = select(OutboxItem).where(OutboxItem.state == FAILED).order_by(
        OutboxItem.failed_at, OutboxItem.system, OutboxItem.key
    )
    if system:
        query = query.where(OutboxItem.system == system)
    async with sm() as session:
        items = (await session.execute(query)).scalars().all()
    return [DeadLetter(i.key, i.system, KINDS.get(i.system, i.system), i.attempts, i.last_error,
                       as_utc(i.failed_at) if i.failed_at else None) for i in items]


async def requeue(sm: async_sessionmaker[AsyncSession], ids: list[str] | None = None) -> tuple[int, list[str]]:
    """Put FAILED items back in the queue, due now: those whose key is in `ids`, or all of them when `ids` is
    None. The payload frozen at the first attempt and the key stay, so the system gets the very same body
    under the very same Idempotency-Key. Returns (how many were requeued, the ids that name no FAILED item)."""
    now = datetime.now(UTC)
    statement = update(OutboxItem).where(OutboxItem.state == FAILED)
    if ids is not None:
        statement = statement.where(OutboxItem.key.in_(set(ids)))
    async with transaction(sm) as session:
        rows = await session.execute(
            statement.values(state=PENDING, next_attempt_at=now, failed_at=None, lease_owner=None, lease_until=None)
            .returning(OutboxItem.system, OutboxItem.key)
            .execution_options(synchronize_session=False)
        )
        found = rows.all()
    keys = {key for _, key in found}
    return len(found), [i for i in dict.fromkeys(ids or []) if i not in keys]


async def _link_incidents(session: AsyncSession, delivered: list[_Result], now: datetime) -> None:
    """An escalated record's incident, so that `Complaint.incidents` finds it (the emergency system is
    looked up by incident id only). The outbox key of an incident is the record's id."""
    links = [
        {"complaint_id": r.key, "incident_id": str(r.receipt["incident_id"]), "created_at": now}
        for r in delivered
        if r.receipt and r.receipt.get("incident_id")
    ]
    if links:
        await session.execute(insert_ignoring_duplicates(session, IncidentLink), links)
