"""The live alert feed's relay (supervision.md, "The live feed"): alerts written in the transaction that raises
them, announced to every replica only once that transaction commits.

`publish_alert(session, alert)` inserts a row into `feed_alerts` inside the caller's transaction and, on
PostgreSQL, sends `NOTIFY` with the row's id on the channel of the session's schema. PostgreSQL delivers a
notification at commit and drops it at rollback, so nothing is announced that did not commit; every
replica's listener (`gateway.api.feed`) hears the id and reads the row. On SQLite there is no NOTIFY: the
listener polls the table by id, which SQLite's single writer makes commit-ordered.

The table is a relay, not the record (the record is `alerts`, `creditFlags`, `supervisionOrders`): rows
older than RETENTION are deleted as new ones are written.

Callers: flags and early warnings (`gateway.flags`), incident escalations (`gateway.api.gql.mutations`),
supervision orders (`gateway.supervision`). Split an alert by handling unit when its records lie in several
subtrees, so that each unit's subscribers hear of their own records and no others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.core.models import FeedAlertRow

KINDS = ("EARLY_WARNING", "CRITICAL_ESCALATION", "SUPERVISION_ISSUED", "SUPERVISION_RESPONDED", "FLAG_RAISED")
RETENTION = timedelta(hours=24)
PRUNE_EVERY = 1000  # ids: the insert whose id is a multiple of this deletes what is past RETENTION
NOTIFY_IDS = 500  # relay ids per notification (a payload must stay under 8000 bytes)
# The NOTIFY channel of the session's schema: replicas of one deployment share it, deployments (or test
# schemas) in other schemas of the same database do not hear each other. Hashed: channels are identifiers
# of at most 63 bytes, schema names need not be.
CHANNEL_SQL = "'gateway_alerts_' || left(md5(current_schema()), 16)"


@dataclass(frozen=True, slots=True)
class Alert:
    """What happened (`kind`, one of KINDS), to whose subtree (`unit`, an org-unit code), about which records,
    with a small JSON-able `detail` (ids, reasons, counts: no personal data). `at` defaults to now."""

    kind: str
    unit: str
    complaint_ids: Sequence[str] = ()
    detail: Mapping[str, Any] = field(default_factory=dict)
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class FeedAlert:
    """An alert as read back from the relay."""

    id: int
    kind: str
    at: datetime
    unit: str
    complaint_ids: list[str]
    detail: dict[str, Any]


async def publish_alert(session: AsyncSession, alert: Alert) -> int:
    """Write `alert` in the session's transaction and announce it when that transaction commits.

    Call it inside the transaction that makes the change the alert reports, never after it. Returns the
    relay id. ValueError for an unknown kind, a naive `at` or an empty unit."""
    return (await publish_alerts(session, [alert]))[0]


async def publish_alerts(session: AsyncSession, alerts: Sequence[Alert]) -> list[int]:
    """`publish_alert` for many alerts at once (one insert, one notification per NOTIFY_IDS ids)."""
    if not alerts:
        return []
    now = datetime.now(UTC)
    rows = []
    for alert in alerts:
        if alert.kind not in KINDS:
            raise ValueError(f"unknown alert kind {alert.kind!r}; kinds are {', '.join(KINDS)}")
        if not alert.unit:
            raise ValueError("an alert needs the unit whose subtree hears it")
        if alert.at is not None and alert.at.tzinfo is None:
            raise ValueError("naive datetime given for an alert's instant")
        rows.append({"kind": alert.kind, "at": alert.at or now, "unit_code": alert.unit,
                     "complaint_ids": list(alert.complaint_ids), "detail": dict(alert.detail)})
    ids = [int(i) for i in (await session.execute(insert(FeedAlertRow).returning(FeedAlertRow.id), rows)).scalars()]
    if session.get_bind().dialect.name == "postgresql":
        for start in range(0, len(ids), NOTIFY_IDS):
            payload = ",".join(map(str, ids[start : start + NOTIFY_IDS]))
            await session.execute(text(f"SELECT pg_notify({CHANNEL_SQL}, :payload)"), {"payload": payload})
    if any(i % PRUNE_EVERY == 0 for i in ids) or len(ids) >= PRUNE_EVERY:
        await session.execute(delete(FeedAlertRow).where(FeedAlertRow.at < now - RETENTION))
    return ids


def _alert(row: Any) -> FeedAlert:
    return FeedAlert(int(row.id), row.kind, row.at, row.unit_code, list(row.complaint_ids or []),
                     dict(row.detail or {}))


async def alerts_by_id(session: AsyncSession, ids: Sequence[int]) -> list[FeedAlert]:
    """The relay rows of these ids that still exist, in id order."""
    if not ids:
        return []
    rows = await session.execute(select(FeedAlertRow).where(FeedAlertRow.id.in_(list(ids))).order_by(FeedAlertRow.id))
    return [_alert(r) for r in rows.scalars()]


async def alerts_after(session: AsyncSession, last_id: int, limit: int = 500) -> list[FeedAlert]:
    """The relay rows after id `last_id`, in id order (the SQLite listener's poll)."""
    rows = await session.execute(
        select(FeedAlertRow).where(FeedAlertRow.id > last_id).order_by(FeedAlertRow.id).limit(limit)
    )
    return [_alert(r) for r in rows.scalars()]


async def alerts_since(session: AsyncSession, since: datetime, limit: int = 5000) -> list[FeedAlert]:
    """The relay rows written at or after `since` (a listener catching up after its connection dropped)."""
    rows = await session.execute(
        select(FeedAlertRow).where(FeedAlertRow.at >= since).order_by(FeedAlertRow.id).limit(limit)
    )
    return [_alert(r) for r in rows.scalars()]


async def last_alert_id(session: AsyncSession) -> int:
    return int((await session.execute(select(FeedAlertRow.id).order_by(FeedAlertRow.id.desc()).limit(1))).scalar()
               or 0)
