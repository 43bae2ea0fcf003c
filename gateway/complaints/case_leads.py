"""Suggesting a record to the enforcement system as a case lead (the `suggestCaseLead` mutation), once.

The body is fixed at the first suggestion (`case_leads`): asking again, or a retry after a crash, sends the
same request under the same Idempotency-Key, and the enforcement system answers with the first lead.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from connectors import EnforcementConnector
from connectors.models import CaseLeadRequest, CaseLeadResult
from gateway.complaints.models import CaseLeadRow
from gateway.core.bulk import insert_ignoring_duplicates
from gateway.core.db import transaction


async def suggest_case_lead(
    sm: async_sessionmaker[AsyncSession], enforcement: EnforcementConnector, record: Any
) -> CaseLeadResult:
    """Send the stored record `record` (a row with `id`, `respondent_uscc`, `handling_unit`, `summary`; the
    caller has checked that the caller may see it) to the enforcement system as a case lead.

    Side effects: the body is stored at the first suggestion (one transaction), sent as stored under the key
    `case-lead-<id>`, and the lead's id and status stored (a second transaction). Raises the connector's
    UpstreamFailure when the enforcement system cannot be reached or refuses.
    """
    now = datetime.now(UTC)
    fresh = CaseLeadRequest(
        complaint_id=record.id, respondent_uscc=record.respondent_uscc, unit_code=record.handling_unit,
        summary=record.summary, suggested_at=now,
    )
    async with transaction(sm) as session:
        await session.execute(
            insert_ignoring_duplicates(session, CaseLeadRow).values(
                complaint_id=record.id, payload=fresh.model_dump(mode="json"), created_at=now
            )
        )
        payload = (
            await session.execute(select(CaseLeadRow.payload).where(CaseLeadRow.complaint_id == record.id))
        ).scalar_one()
    result = await enforcement.create_case_lead(CaseLeadRequest.model_validate(payload),
                                                idempotency_key=f"case-lead-{record.id}")
    async with transaction(sm) as session:
        await session.execute(
            update(CaseLeadRow).where(CaseLeadRow.complaint_id == record.id)
            .values(lead_id=result.lead_id, status=result.status)
        )
    return result
