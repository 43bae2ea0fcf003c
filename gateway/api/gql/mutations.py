"""Mutations (role `operator`): record a handling event in the store, or act through a connector.

Each acts only on records in the caller's jurisdiction; a record outside it is NOT_FOUND, as if absent.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import graphene
from pydantic import ValidationError
from sqlalchemy import select, update

from connectors.models import CaseLeadRequest, IncidentRequest
from gateway.api.gql import enums, errors
from gateway.api.gql.context import RequestContext, context_of
from gateway.api.gql.types import JSON, CaseLead, Complaint, Incident
from gateway.complaints.models import CaseLeadRow, Event
from gateway.complaints.models import Complaint as ComplaintRow
from gateway.complaints.records import EventIn, describe_errors
from gateway.core.bulk import insert_ignoring_duplicates
from gateway.core.db import transaction
from gateway.flags.models import EscalationRow, IncidentLink
from gateway.ingest.store import after_store, merge_events
from gateway.units.models import OrgUnit

_URGENCY_ORDER = {"NORMAL": 0, "URGENT": 1, "CRITICAL": 2}
MAX_ESCALATION = 100


class EventInput(graphene.InputObjectType):
    id = graphene.ID(required=True, description="Unique in the whole system; sending it again changes nothing.")
    type = graphene.Field(enums.EventType, required=True)
    at = graphene.DateTime(required=True)
    unit = graphene.String()
    data = JSON(description="As records.md gives for the type; {} when omitted.")


async def _visible(ctx: RequestContext, complaint_id: str) -> Any:
    row = await ctx.loaders.complaint.load(complaint_id)
    if row is None or not ctx.sees_complaint(row):
        raise errors.not_found(f"no complaint {complaint_id}")
    return row


def _event_in(raw: dict[str, Any]) -> EventIn:
    at = raw["at"]
    data = raw.get("data")
    doc = {
        "id": raw["id"],
        "type": str(getattr(raw["type"], "value", raw["type"])),
        # Hand the instant to the one validator of records.md, which refuses a naive time.
        "at": at.isoformat() if isinstance(at, datetime) and at.tzinfo else "naive",
        "unit": raw.get("unit"),
        "data": {} if data is None else data,
    }
    try:
        return EventIn.model_validate(doc)
    except ValidationError as exc:
        raise errors.bad_input(f"event: {describe_errors(exc)}", argument="event") from None


async def record_event(info: graphene.ResolveInfo, complaint_id: str, event: dict[str, Any]) -> Any:
    ctx = context_of(info)
    ctx.require("operator")
    ev = _event_in(event)
    await _visible(ctx, complaint_id)
    async with transaction(ctx.sessionmaker) as session:
        if ev.unit is not None and await session.get(OrgUnit, ev.unit) is None:
            raise errors.bad_input(f"event.unit: unknown unit code {ev.unit}", argument="event")
        owner = (await session.execute(select(Event.complaint_id).where(Event.id == ev.id))).scalar_one_or_none()
        if owner is not None and owner != complaint_id:
            raise errors.bad_input(f"event.id: {ev.id} is already an event of another record", argument="event")
        await merge_events(session, {complaint_id: [ev]})
        await session.execute(
            update(ComplaintRow).where(ComplaintRow.id == complaint_id).values(updated_at=datetime.now(UTC))
        )
        await after_store(session, [complaint_id])
    # The request's loaders saw the record before the write.
    for loader in (ctx.loaders.complaint, ctx.loaders.events):
        loader.clear(complaint_id)
    return await ctx.loaders.complaint.load(complaint_id)


async def suggest_case_lead(info: graphene.ResolveInfo, complaint_id: str) -> Any:
    ctx = context_of(info)
    ctx.require("operator")
    row = await _visible(ctx, complaint_id)
    # The body is fixed at the first suggestion: asking again (or a retry after a crash) sends the same
    # request under the same key, and the enforcement system answers with the first lead.
    fresh = CaseLeadRequest(
        complaint_id=row.id, respondent_uscc=row.respondent_uscc, unit_code=row.handling_unit,
        summary=row.summary, suggested_at=datetime.now(UTC),
    )
    async with transaction(ctx.sessionmaker) as session:
        await session.execute(
            insert_ignoring_duplicates(session, CaseLeadRow).values(
                complaint_id=row.id, payload=fresh.model_dump(mode="json"), created_at=datetime.now(UTC)
            )
        )
        payload = (
            await session.execute(select(CaseLeadRow.payload).where(CaseLeadRow.complaint_id == row.id))
        ).scalar_one()
    lead = CaseLeadRequest.model_validate(payload)
    result = await ctx.upstreams.enforcement.create_case_lead(lead, idempotency_key=f"case-lead-{row.id}")
    async with transaction(ctx.sessionmaker) as session:
        await session.execute(
            update(CaseLeadRow).where(CaseLeadRow.complaint_id == row.id)
            .values(lead_id=result.lead_id, status=result.status)
        )
    return CaseLead(lead_id=result.lead_id, status=result.status, complaint_id=row.id)


async def escalate_incident(info: graphene.ResolveInfo, complaint_ids: list[str], summary: str) -> Any:
    ctx = context_of(info)
    ctx.require("operator")
    ids = list(dict.fromkeys(complaint_ids))
    if not ids or len(ids) > MAX_ESCALATION:
        raise errors.bad_input(f"complaintIds: give 1 to {MAX_ESCALATION} ids", argument="complaintIds")
    if not summary.strip() or len(summary) > 4000:
        raise errors.bad_input("summary: 1 to 4000 characters", argument="summary")
    found = await ctx.loaders.complaint.load_many(ids)  # one batch, not one query per id
    missing = [cid for cid, row in zip(ids, found, strict=True) if row is None or not ctx.sees_complaint(row)]
    if missing:
        raise errors.not_found(f"no complaint {', '.join(missing)}")
    rows = [row for row in found if row is not None]
    urgency = max((r.urgency for r in rows), key=_URGENCY_ORDER.__getitem__)
    category = Counter(r.category for r in rows).most_common(1)[0][0]
    now = datetime.now(UTC)
    fresh = IncidentRequest(
        complaint_ids=ids, category=category, urgency=urgency, unit_code=ctx.jurisdiction.unit, summary=summary,
        reported_at=now,
    )
    # The same escalation sent again (a client's retry) must not open a second incident: same key, and the
    # body fixed at the first attempt, so the emergency system sees the very same request.
    key = "incident-" + hashlib.sha256("\n".join([*sorted(ids), summary]).encode()).hexdigest()[:40]
    async with transaction(ctx.sessionmaker) as session:
        await session.execute(
            insert_ignoring_duplicates(session, EscalationRow).values(
                key=key, payload=fresh.model_dump(mode="json"), created_at=now
            )
        )
        payload = (await session.execute(select(EscalationRow.payload).where(EscalationRow.key == key))).scalar_one()
    request = IncidentRequest.model_validate(payload)
    result = await ctx.upstreams.emergency.create_incident(request, idempotency_key=key)
    async with transaction(ctx.sessionmaker) as session:
        existing = set(
            (await session.execute(
                select(IncidentLink.complaint_id).where(IncidentLink.incident_id == result.incident_id)
            )).scalars()
        )
        session.add_all(
            IncidentLink(complaint_id=cid, incident_id=result.incident_id, created_at=now)
            for cid in ids if cid not in existing
        )
        await session.execute(update(EscalationRow).where(EscalationRow.key == key)
                              .values(incident_id=result.incident_id))
    return Incident(
        incident_id=result.incident_id, complaint_ids=ids, status=result.status, commanding_unit=None,
        updated_at=now,
    )


class Mutation(graphene.ObjectType):
    record_event = graphene.Field(
        Complaint, complaint_id=graphene.ID(required=True), event=EventInput(required=True),
        description="Store a handling event (records.md); the record as it now stands.",
    )
    suggest_case_lead = graphene.Field(
        CaseLead, complaint_id=graphene.ID(required=True),
        description="Send the record to the enforcement system as a case lead, once per record.",
    )
    escalate_incident = graphene.Field(
        Incident, complaint_ids=graphene.List(graphene.NonNull(graphene.ID), required=True),
        summary=graphene.String(required=True),
        description="Report an incident to the emergency-command system.",
    )

    @staticmethod
    async def resolve_record_event(root: Any, info: graphene.ResolveInfo, complaint_id: str,
                                   event: dict[str, Any]) -> Any:
        return await record_event(info, complaint_id, event)

    @staticmethod
    async def resolve_suggest_case_lead(root: Any, info: graphene.ResolveInfo, complaint_id: str) -> Any:
        return await suggest_case_lead(info, complaint_id)

    @staticmethod
    async def resolve_escalate_incident(root: Any, info: graphene.ResolveInfo, complaint_ids: list[str],
                                        summary: str) -> Any:
        return await escalate_incident(info, complaint_ids, summary)
