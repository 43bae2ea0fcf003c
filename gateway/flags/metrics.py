"""Prometheus metrics of flags, the outbox and early warning (default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.core.db import on_commit

# The backlog is shared (read from the database at scrape time): under `gateway serve --workers N` the most
# recent reading of a live worker is the answer, not one series per process.
OUTBOX_PENDING = Gauge("gateway_outbox_pending", "Outbox items not yet delivered", ["system"],
                       multiprocess_mode="livemostrecent")
OUTBOX_FAILED = Gauge(
    "gateway_outbox_failed",
    "Outbox items a system refused for good (dead letters): they wait for `gateway dispatch --requeue`",
    ["system"], multiprocess_mode="livemostrecent",
)
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

def count_on_commit(session: AsyncSession, name: str, n: int = 1) -> None:
    """Count `n` of `name` ("alerts" or a flag reason) once the session's transaction commits: a rolled-back
    batch raised nothing."""
    if name == "alerts":
        on_commit(session, lambda: ALERTS_RAISED.inc(n))
    else:
        on_commit(session, lambda: FLAGS_RAISED.labels(name).inc(n))
