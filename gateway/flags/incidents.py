"""Escalating records to the emergency-command system by hand (the `escalateIncident` mutation).

The same escalation sent again (a client's retry, a retry after a crash) must not open a second incident:
its Idempotency-Key is derived from the records and the summary, and its body is fixed at the first attempt
(`incident_escalations`), so the emergency system sees the very same request and answers with its first
result. The incidents raised are linked to their records (`incident_links`) for `Complaint.incidents`.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from connectors import EmergencyConnector
from connectors.models import IncidentRequest
from gateway.core.bulk import insert_ignoring_duplicates
from gateway.core.db import transaction
from gateway.core.feed import publish_alerts
from gateway.flags.models import EscalationRow, IncidentLink
from gateway.flags.rules import incident_alerts

MAX_RECORDS = 100  # records one escalation may name
MAX_SUMMARY_CHARS = 4000
URGENCY_ORDER = {"NORMAL": 0, "URGENT": 1, "CRITICAL": 2}


@dataclass(frozen=True, slots=True)
class Escalation:
    incident_id: str
    status: str
    complaint_ids: list[str]
    reported_at: datetime


def escalation_key(complaint_ids: Sequence[str], summary: str) -> str:
    """The Idempotency-Key of an escalation: the same records (in any order) and summary, the same key."""
    digest = hashlib.sha256("\n".join([*sorted(complaint_ids), summary]).encode()).hexdigest()
    return f"incident-{digest[:40]}"


def incident_request(records: Sequence[Any], summary: str, unit: str, now: datetime) -> IncidentRequest:
    """The incident body (external-systems.md) for these records (rows with `id`, `urgency`, `category`):
    the highest urgency among them, their most frequent category, reported by `unit`."""
    return IncidentRequest(
        complaint_ids=[r.id for r in records],
        category=Counter(r.category for r in records).most_common(1)[0][0],
        urgency=max((r.urgency for r in records), key=URGENCY_ORDER.__getitem__),
        unit_code=unit, summary=summary, reported_at=now,
    )


async def escalate(
    sm: async_sessionmaker[AsyncSession], emergency: EmergencyConnector, records: Sequence[Any], summary: str,
    unit: str,
) -> Escalation:
    """Report an incident for `records` (1..MAX_RECORDS stored rows, distinct, in the order asked; the caller
    has checked that the caller may see them) on behalf of `unit`, and link it to them.

    Side effects: the body is stored at the first attempt (one transaction) and sent as stored; then the
    links and the incident id are stored, and the live feed told (CRITICAL_ESCALATION, once per incident), in a
    second transaction. Raises ValueError for no records or too
    many, and the connector's UpstreamFailure when the emergency system cannot be reached or refuses.
    """
    if not 1 <= len(records) <= MAX_RECORDS:
        raise ValueError(f"give 1 to {MAX_RECORDS} records")
    ids = [r.id for r in records]
    now = datetime.now(UTC)
    key = escalation_key(ids, summary)
    async with transaction(sm) as session:
        fresh = incident_request(records, summary, unit, now)
        await session.execute(
            insert_ignoring_duplicates(session, EscalationRow).values(
                key=key, payload=fresh.model_dump(mode="json"), created_at=now
            )
        )
        payload = (await session.execute(select(EscalationRow.payload).where(EscalationRow.key == key))).scalar_one()
    result = await emergency.create_incident(IncidentRequest.model_validate(payload), idempotency_key=key)
    async with transaction(sm) as session:
        linked = set(
            (await session.execute(
                select(IncidentLink.complaint_id).where(IncidentLink.incident_id == result.incident_id)
            )).scalars()
        )
        session.add_all(
            IncidentLink(complaint_id=cid, incident_id=result.incident_id, created_at=now)
            for cid in ids if cid not in linked
        )
        await session.execute(
            update(EscalationRow).where(EscalationRow.key == key).values(incident_id=result.incident_id)
        )
        if not linked:  # the first time this incident is linked: announced once, whatever retries follow
            await publish_alerts(session, incident_alerts(records, "escalation", result.incident_id))
    return Escalation(result.incident_id, result.status, ids, now)
