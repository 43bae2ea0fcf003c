"""Prometheus metrics of the ways records come in (default registry)."""

from __future__ import annotations

from typing import Literal

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.core.db import on_commit

Source = Literal["push", "import", "sync"]

INGESTED = Counter(
    "gateway_ingest_records",  # exposed as gateway_ingest_records_total
    "Complaint records received, by path (push, import, sync) and result (stored, rejected)",
    ["source", "result"],
)


def count_stored_on_commit(session: AsyncSession, source: Source, n: int) -> None:
    """Count `n` records of `source` as stored once the session's transaction commits."""
    if n:
        on_commit(session, lambda: INGESTED.labels(source, "stored").inc(n))


def count_rejected(source: Source, n: int = 1) -> None:
    """Count `n` records of `source` refused by the validator (whatever becomes of the batch beside them)."""
    if n:
        INGESTED.labels(source, "rejected").inc(n)
