"""Prometheus metrics of flags, the outbox and early warning (default registry)."""

from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import Counter, Gauge
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

# The backlog is shared (read from the database at scrape time): under `gateway serve --workers N` the most
# recent reading of a live worker is the answer, not one series per process.
OUTBOX_PENDING = Gauge("gateway_outbox_pending", "Outbox items not yet delivered", ["system"],
                       multiprocess_mode="livemostrecent")
OUTBOX_OLDEST_AGE = Gauge(
    "gateway_outbox_oldest_age_seconds", "Age of the oldest outbox item not yet delivered", ["system"],
    multiprocess_mode="livemostrecent",
)
DELIVERIES = Counter(
    "gateway_outbox_deliveries",  # exposed as gateway_outbox_deliveries_total
    "Delivery attempts of outbox items by outcome: delivered, unavailable (retried later), error (refused, "
    "parked as FAILED), config (bad credentials, retried later)",
    ["system", "outcome"],
)
ALERTS_RAISED = Counter("gateway_alerts_raised", "Early-warning alerts raised (动态预警)")
FLAGS_RAISED = Counter("gateway_flags_raised", "Complaint flags raised, by reason", ["reason"])

_PENDING_KEY = "gateway.flags.metrics.pending"


def count_on_commit(session: AsyncSession, name: str, n: int = 1) -> None:
    """Count `n` of `name` ("alerts" or a flag reason) once the session's transaction commits: a rolled-back
    batch raised nothing."""
    info = session.sync_session.info
    pending: Tally[str] | None = info.get(_PENDING_KEY)
    if pending is None:
        pending = info[_PENDING_KEY] = Tally()
        event.listen(session.sync_session, "after_commit", _flush)
        event.listen(session.sync_session, "after_rollback", _drop)
    pending[name] += n


def _flush(sync_session: object) -> None:
    pending: Tally[str] = sync_session.info[_PENDING_KEY]  # type: ignore[attr-defined]
    for name, n in pending.items():
        if name == "alerts":
            ALERTS_RAISED.inc(n)
        else:
            FLAGS_RAISED.labels(name).inc(n)
    pending.clear()


def _drop(sync_session: object) -> None:
    sync_session.info[_PENDING_KEY].clear()  # type: ignore[attr-defined]
