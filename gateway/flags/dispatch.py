"""Sending the outbox through the process's connectors: the senders, the background dispatcher of `gateway serve`,
and reconciliation with the credit system (`gateway dispatch` itself is `gateway/cli/dispatch.py`).

Connectors are the process's one set (gateway/core/upstreams.py); a system whose URL is unset is skipped and
its items wait. Reconciliation lists what the credit system holds per enterprise (GET
/api/v1/complaint-flags?uscc=) and compares it with what the gateway raised and sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from connectors import CreditConnector, EmergencyConnector
from connectors.models import ComplaintFlag, IncidentRequest
from gateway.core.db import transaction
from gateway.core.settings import Settings
from gateway.core.upstreams import Upstreams
from gateway.flags.models import CREDIT, DELIVERED, EMERGENCY, FAILED, PENDING, FlagRow, OutboxItem
from gateway.flags.outbox import DispatchConfig, Dispatcher, Sender

log = logging.getLogger(__name__)


def dispatch_config(settings: Settings) -> DispatchConfig:
    """The dispatcher's tuning (`GATEWAY_DISPATCH_*`) from the settings."""
    return DispatchConfig(
        batch=settings.dispatch_batch,
        concurrency=settings.dispatch_concurrency,
        lease_s=settings.dispatch_lease_s,
        interval_s=settings.dispatch_interval_s,
        backoff_base_s=settings.dispatch_backoff_base_s,
        backoff_max_s=settings.dispatch_backoff_max_s,
    )


def credit_sender(credit: CreditConnector) -> Sender:
    """A sender posting a frozen ComplaintFlag payload to the credit system under its key; the receipt as JSON.
    ValueError for a payload the contract model refuses; the connector's UpstreamFailure otherwise.
    """
    async def send(key: str, payload: dict[str, Any]) -> dict[str, Any]:
        receipt = await credit.post_flag(ComplaintFlag.model_validate(payload), idempotency_key=key)
        return receipt.model_dump(mode="json")

    return send


def emergency_sender(emergency: EmergencyConnector) -> Sender:
    """A sender creating an incident from a frozen payload under its key; the result as JSON. ValueError for a payload
    the contract model refuses; the connector's UpstreamFailure otherwise.
    """
    async def send(key: str, payload: dict[str, Any]) -> dict[str, Any]:
        result = await emergency.create_incident(IncidentRequest.model_validate(payload), idempotency_key=key)
        return result.model_dump(mode="json")

    return send


@dataclass
class Outbound:
    """The connectors a dispatcher sends through (borrowed from the process's `Upstreams`, which closes
    them), and the senders of the configured systems."""

    credit: CreditConnector
    emergency: EmergencyConnector
    senders: dict[str, Sender] = field(default_factory=dict)

    @classmethod
    def of(cls, upstreams: Upstreams) -> Outbound:
        """Senders for the configured systems among `upstreams` (a warning is logged for each one not configured: its
        items wait).
        """
        out = cls(upstreams.credit, upstreams.emergency)
        if out.credit.configured:
            out.senders[CREDIT] = credit_sender(out.credit)
        if out.emergency.configured:
            out.senders[EMERGENCY] = emergency_sender(out.emergency)
        for system in (CREDIT, EMERGENCY):
            if system not in out.senders:
                log.warning("%s system not configured: its outbox items wait until GATEWAY_%s_URL is set",
                            system, system.upper())
        return out


# ---------------------------------------------------------------------------------------------- background


class BackgroundDispatcher:
    """The dispatcher loop as a task of the server's event loop (GATEWAY_DISPATCHER=on), sending through the
    server's own connectors."""

    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession],
                 upstreams: Upstreams) -> None:
        self.outbound = Outbound.of(upstreams)
        self.dispatcher = Dispatcher(sessionmaker, self.outbound.senders, dispatch_config(settings))
        self.stop_event = asyncio.Event()
        self.task = asyncio.create_task(self.dispatcher.run_forever(self.stop_event), name="outbox-dispatcher")

    async def stop(self) -> None:
        """Let the current pass end (up to 10 s), then stop; the connectors stay open (their owner closes them)."""
        self.stop_event.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self.task, timeout=10)


# ---------------------------------------------------------------------------------------------- reconcile


@dataclass
class ReconcileReport:
    enterprises: int = 0
    flags: int = 0  # raised by the gateway, for the enterprises checked
    delivered: int = 0
    received: int = 0  # distinct flag_ids the credit system lists
    pending_not_received: int = 0  # not yet delivered and not there: the normal backlog
    failed: list[str] = field(default_factory=list)  # refused for good and not there: dead letters to requeue
    missing: list[str] = field(default_factory=list)  # marked delivered, absent at the credit system
    received_unmarked: list[str] = field(default_factory=list)  # there, but not marked delivered here
    unknown: list[str] = field(default_factory=list)  # there, but never raised by this gateway
    duplicated: list[str] = field(default_factory=list)  # listed more than once by the credit system
    severity_differs: list[str] = field(default_factory=list)  # there with another severity than sent
    repaired: int = 0
    unreachable: list[str] = field(default_factory=list)  # enterprises whose list could not be fetched

    @property
    def consistent(self) -> bool:
        return not (self.missing or self.received_unmarked or self.unknown or self.duplicated
                    or self.severity_differs or self.unreachable or self.failed)


async def reconcile(
    sm: async_sessionmaker[AsyncSession],
    credit: CreditConnector,
    usccs: list[str] | None = None,
    repair: bool = False,
    concurrency: int = 8,
) -> ReconcileReport:
    """Compare the credit system's flags with ours, per enterprise (`usccs`, or every enterprise we flagged),
    `concurrency` lists at a time. An enterprise whose list cannot be fetched is reported in `unreachable`,
    the others still checked.

    With `repair`: flags it holds are marked delivered here, and flags we marked delivered that it lacks
    are queued again (same flag_id and key), in one transaction. Reads only otherwise. Flags it refused for
    good (FAILED) and does not hold are reported in `failed` and make the state inconsistent; repair leaves
    them to an operator (`gateway dispatch --requeue`): sent again unchanged, they may be refused again.
    """
    ours = await _flags_sent(sm, usccs)
    wanted = sorted(set(usccs or ours))
    report = ReconcileReport(enterprises=len(wanted))
    gate = asyncio.Semaphore(concurrency)

    async def check(uscc: str) -> None:
        async with gate:
            try:
                theirs = await credit.flags(uscc)
            except Exception as exc:  # one enterprise's failure is reported, the others still checked
                log.warning("reconcile %s: %s", uscc, exc)
                report.unreachable.append(uscc)
                return
        _compare(report, ours.get(uscc, {}), theirs)

    await asyncio.gather(*(check(u) for u in wanted))
    if repair and (report.missing or report.received_unmarked):
        await _repair(sm, report)
    return report


# flag_id -> (outbox state, payload), per USCC
Sent = dict[str, dict[str, tuple[str, dict[str, Any]]]]


async def _flags_sent(sm: async_sessionmaker[AsyncSession], usccs: list[str] | None) -> Sent:
    async with sm() as session:
        query = select(FlagRow.flag_id, FlagRow.uscc, OutboxItem.state, OutboxItem.payload).join(
            OutboxItem, (OutboxItem.system == CREDIT) & (OutboxItem.key == FlagRow.flag_id)
        )
        if usccs:
            query = query.where(FlagRow.uscc.in_(usccs))
        ours: Sent = {}
        for fid, uscc, state, payload in (await session.execute(query)).all():
            ours.setdefault(uscc, {})[fid] = (state, payload)
    return ours


def _compare(report: ReconcileReport, mine: dict[str, tuple[str, dict[str, Any]]], theirs: list[Any]) -> None:
    """One enterprise: what we raised and sent (`mine`) against what the credit system lists (`theirs`)."""
    listed = Counter(f.flag_id for f in theirs)
    severity = {f.flag_id: f.severity for f in theirs}
    report.flags += len(mine)
    report.received += len(listed)
    report.duplicated += [fid for fid, n in listed.items() if n > 1]
    report.unknown += [fid for fid in listed if fid not in mine]
    for fid, (state, payload) in mine.items():
        if state == DELIVERED:
            report.delivered += 1
            if fid not in listed:
                report.missing.append(fid)
        elif fid in listed:
            report.received_unmarked.append(fid)
        elif state == FAILED:
            report.failed.append(fid)
        else:
            report.pending_not_received += 1
        if fid in listed and severity[fid] != payload.get("severity"):
            report.severity_differs.append(fid)


async def _repair(sm: async_sessionmaker[AsyncSession], report: ReconcileReport) -> None:
    now = datetime.now(UTC)
    async with transaction(sm) as session:
        if report.missing:
            await session.execute(
                update(OutboxItem)
                .where(OutboxItem.system == CREDIT, OutboxItem.key.in_(report.missing))
                .values(state=PENDING, next_attempt_at=now, delivered_at=None, lease_until=None,
                        last_error="requeued by reconciliation: absent at the credit system")
            )
        if report.received_unmarked:
            await session.execute(
                update(OutboxItem)
                .where(OutboxItem.system == CREDIT, OutboxItem.key.in_(report.received_unmarked),
                       OutboxItem.state != DELIVERED)
                .values(state=DELIVERED, delivered_at=now, lease_owner=None, lease_until=None,
                        last_error=None, receipt={"reconciled_at": now.isoformat()})
            )
    report.repaired = len(report.missing) + len(report.received_unmarked)
