"""Mutations (role `operator`): record a handling event in the store, or act through a connector.

Each acts only on records in the caller's jurisdiction; a record outside it is NOT_FOUND, as if absent. The
resolvers parse, authorise and call the domain: `gateway.ingest.events.record_event`,
`gateway.complaints.case_leads.suggest_case_lead`, `gateway.flags.incidents.escalate`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import graphene
from pydantic import ValidationError

from gateway.api.gql import enums, errors
from gateway.api.gql.context import RequestContext, context_of
from gateway.api.gql.scalars import DateTime
from gateway.api.gql.supervision import SupervisionMutation
from gateway.api.gql.types import JSON, CaseLead, Complaint, Incident
from gateway.complaints.case_leads import suggest_case_lead
from gateway.complaints.records import EventIn, describe_errors
from gateway.core.db import transaction
from gateway.flags.incidents import MAX_RECORDS, MAX_SUMMARY_CHARS, escalate
from gateway.ingest.events import EventRejected, record_event


class EventInput(graphene.InputObjectType):
    id = graphene.ID(required=True, description="Unique in the whole system; sending it again changes nothing.")
    type = graphene.Field(enums.EventType, required=True)
    at = DateTime(required=True)
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


async def _record_event(info: graphene.ResolveInfo, complaint_id: str, event: dict[str, Any]) -> Any:
    ctx = context_of(info)
    ctx.require("operator")
    ev = _event_in(event)
    await _visible(ctx, complaint_id)
    try:
        async with transaction(ctx.sessionmaker) as session:
            await record_event(session, complaint_id, ev)
    except EventRejected as exc:
        raise errors.bad_input(str(exc), argument="event") from None
    # The request's loaders saw the record before the write.
    for loader in (ctx.loaders.complaint, ctx.loaders.events):
        loader.clear(complaint_id)
    return await ctx.loaders.complaint.load(complaint_id)


async def _suggest_case_lead(info: graphene.ResolveInfo, complaint_id: str) -> Any:
    ctx = context_of(info)
    ctx.require("operator")
    row = await _visible(ctx, complaint_id)
    result = await suggest_case_lead(ctx.sessionmaker, ctx.upstreams.enforcement, row)
    return CaseLead(lead_id=result.lead_id, status=result.status, complaint_id=row.id)


async def _escalate_incident(info: graphene.ResolveInfo, complaint_ids: list[str], summary: str) -> Any:
    ctx = context_of(info)
    ctx.require("operator")
    ids = list(dict.fromkeys(complaint_ids))
    if not ids or len(ids) > MAX_RECORDS:
        raise errors.bad_input(f"complaintIds: give 1 to {MAX_RECORDS} ids", argument="complaintIds")
    if not summary.strip() or len(summary) > MAX_SUMMARY_CHARS:
        raise errors.bad_input(f"summary: 1 to {MAX_SUMMARY_CHARS} characters", argument="summary")
    found = await ctx.loaders.complaint.load_many(ids)  # one batch, not one query per id
    missing = [cid for cid, row in zip(ids, found, strict=True) if row is None or not ctx.sees_complaint(row)]
    if missing:
        raise errors.not_found(f"no complaint {', '.join(missing)}")
    rows = [row for row in found if row is not None]
    done = await escalate(ctx.sessionmaker, ctx.upstreams.emergency, rows, summary, unit=ctx.jurisdiction.unit)
    return Incident(incident_id=done.incident_id, complaint_ids=done.complaint_ids, status=done.status,
                    commanding_unit=None, updated_at=done.reported_at)


class Mutation(SupervisionMutation, graphene.ObjectType):
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
        return await _record_event(info, complaint_id, event)

    @staticmethod
    async def resolve_suggest_case_lead(root: Any, info: graphene.ResolveInfo, complaint_id: str) -> Any:
        return await _suggest_case_lead(info, complaint_id)

    @staticmethod
    async def resolve_escalate_incident(root: Any, info: graphene.ResolveInfo, complaint_ids: list[str],
                                        summary: str) -> Any:
        return await _escalate_incident(info, complaint_ids, summary)
