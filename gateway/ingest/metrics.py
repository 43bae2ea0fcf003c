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


def count_on_commit(session: AsyncSession, source: Source, result: str, n: int) -> None:
    """Count `n` records of `source` as `result` ("stored", "rejected") once the session's transaction
    commits: a batch rolled back (and read again later, as a sync page is) counts nothing."""
    if n:
        on_commit(session, lambda: INGESTED.labels(source, result).inc(n))


def count_rejected(source: Source, n: int = 1) -> None:
    """Count `n` records of `source` refused by the validator at once (a bad line of an import file, which
    no transaction holds)."""
    if n:
        INGESTED.labels(source, "rejected").inc(n)
