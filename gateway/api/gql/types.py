"""Object types of the federated schema: records from the store, cases, enterprises and incidents from
the external systems. Parents are plain rows or connector models; every cross-record hop goes through a
DataLoader of the request, so a list of N records costs one batch per kind of lookup, not N."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import graphene
from graphene.types.generic import GenericScalar

from gateway.api.gql import enums
from gateway.api.gql.context import context_of
from gateway.api.gql.scalars import DateTime
from gateway.complaints.pii import mask_name, mask_phone
from gateway.complaints.status import status_of
from gateway.core.money import cents_to_money, money_to_cents
from gateway.reports.deadlines import deadlines_of


class OrgUnit(graphene.ObjectType):
    class Meta:
        description = "A unit of the five-level hierarchy (总局/省/市/县/所)."

    code = graphene.String(required=True)
    name = graphene.String(required=True)
    level = graphene.Int(required=True)
    parent = graphene.Field(lambda: OrgUnit, description="Null above the caller's own unit.")
    children = graphene.List(graphene.NonNull(lambda: OrgUnit), required=True)

    @staticmethod
    async def resolve_parent(root: Any, info: graphene.ResolveInfo) -> Any:
        ctx = context_of(info)
        if root.parent_code is None:
            return None
        unit = await ctx.loaders.unit.load(root.parent_code)
        return unit if unit is not None and ctx.sees_unit(unit) else None

    @staticmethod
    async def resolve_children(root: Any, info: graphene.ResolveInfo) -> list[Any]:
        # A unit above the caller (an order's issuing unit) shows no siblings of the caller's branch.
        ctx = context_of(info)
        return [c for c in await ctx.loaders.children.load(root.code) or [] if ctx.sees_unit(c)]


class Respondent(graphene.ObjectType):
    uscc = graphene.String()
    name = graphene.String(required=True)


@dataclass(frozen=True, slots=True)
class ComplainantView:
    complaint_id: str
    name: str | None
    phone: str | None
    real_name: bool


class Complainant(graphene.ObjectType):
    class Meta:
        description = "Personal data: masked unless the caller has the `pii` role; clear reads are audited."

    name = graphene.String()
    phone = graphene.String()
    real_name = graphene.Boolean(required=True)

    @staticmethod
    def resolve_name(root: ComplainantView, info: graphene.ResolveInfo) -> str | None:
        return _personal(root, info, "name", root.name, mask_name)

    @staticmethod
    def resolve_phone(root: ComplainantView, info: graphene.ResolveInfo) -> str | None:
        return _personal(root, info, "phone", root.phone, mask_phone)


def _personal(root: ComplainantView, info: graphene.ResolveInfo, field: str, value: str | None, mask: Any) -> Any:
    ctx = context_of(info)
    if not ctx.principal.has("pii"):
        return mask(value)
    if value is not None:
        ctx.pii_reads[root.complaint_id].add(field)
    return value


class JSON(GenericScalar):
    """Any JSON value: an event's `data` object (records.md)."""


class Event(graphene.ObjectType):
    id = graphene.ID(required=True)
    type = graphene.Field(enums.EventType, required=True)
    at = DateTime(required=True)
    unit = graphene.String()
    data = graphene.Field(JSON, required=True)


class Deadline(graphene.ObjectType):
    class Meta:
        description = "One obligation of the record (kpi.md) as of now."

    code = graphene.Field(enums.ObligationCode, required=True)
    starts_at = DateTime(required=True)
    due_date = graphene.Date(required=True)
    fulfilled_at = DateTime()
    state = graphene.Field(enums.ObligationState, required=True)
    policy_version = graphene.String()


class Case(graphene.ObjectType):
    class Meta:
        description = "An enforcement case (执法办案系统)."

    case_no = graphene.String(required=True)
    lead_id = graphene.String()
    complaint_ids = graphene.List(graphene.NonNull(graphene.ID), required=True)
    respondent_uscc = graphene.String()
    unit_code = graphene.String(required=True)
    status = graphene.Field(enums.CaseStatus, required=True)
    violation = graphene.String()
    penalty_amount = graphene.String(description="CNY, decimal string")
    filed_at = DateTime(required=True)
    closed_at = DateTime()

    @staticmethod
    def resolve_penalty_amount(root: Any, info: graphene.ResolveInfo) -> str | None:
        return cents_to_money(money_to_cents(root.penalty_amount))


class Incident(graphene.ObjectType):
    class Meta:
        description = "An incident of the emergency-command system (应急指挥管理系统)."

    incident_id = graphene.ID(required=True)
    complaint_ids = graphene.List(graphene.NonNull(graphene.ID), required=True)
    status = graphene.Field(enums.IncidentStatus, required=True)
    commanding_unit = graphene.String()
    updated_at = DateTime(required=True)


class CaseLead(graphene.ObjectType):
    lead_id = graphene.ID(required=True)
    status = graphene.String(required=True)
    complaint_id = graphene.ID(required=True)


class CreditProfile(graphene.ObjectType):
    class Meta:
        description = "What the enterprise credit system (国家企业信用信息公示系统) holds."

    name = graphene.String(required=True)
    legal_representative = graphene.String()
    registration_status = graphene.Field(enums.RegistrationStatus, required=True)
    registration_authority = graphene.String(required=True)
    abnormal_operation = graphene.Boolean(required=True)
    serious_violation = graphene.Boolean(required=True)
    risk_level = graphene.Field(enums.RiskLevel, required=True)
    updated_at = DateTime(required=True)


class Complaint(graphene.ObjectType):
    class Meta:
        description = "A complaint, report, inquiry or suggestion (records.md), as the gateway holds it."

    id = graphene.ID(required=True)
    kind = graphene.Field(enums.Kind, required=True)
    channel = graphene.Field(enums.Channel, required=True)
    hotline = graphene.String(description="For HOTLINE records, the number dialled: 12315, 12365, …")
    urgency = graphene.Field(enums.Urgency, required=True)
    category = graphene.Field(enums.Category, required=True)
    received_at = DateTime(required=True)
    handling_unit = graphene.Field(OrgUnit, required=True)
    region_code = graphene.String()
    respondent = graphene.Field(Respondent)
    complainant = graphene.Field(Complainant)
    summary = graphene.String(required=True)
    amount_involved = graphene.String(description="CNY, decimal string")
    recovered_amount = graphene.String(description="CNY, decimal string")
    status = graphene.Field(enums.ComplaintStatus, required=True)
    updated_at = DateTime(required=True)
    events = graphene.List(graphene.NonNull(Event), required=True)
    deadlines = graphene.List(graphene.NonNull(Deadline), description="Each started obligation (kpi.md), as of now.")
    enterprise = graphene.Field(lambda: Enterprise, description="The respondent, by its USCC.")
    cases = graphene.List(graphene.NonNull(Case), description="Enforcement cases filed from this record.")
    incidents = graphene.List(graphene.NonNull(Incident), description="Incidents raised from this record.")
    supervision_orders = graphene.List(
        graphene.NonNull("gateway.api.gql.supervision.SupervisionOrder"), required=True,
        description="Supervision orders (督办单) on this record, newest first.",
    )

    # The hot fields of a record resolve synchronously when their value is at hand (the unit snapshot, the
    # personal data read with the record): no coroutine or future per field, and graphql-core completes
    # the object without gathering awaitables.
    @staticmethod
    def resolve_handling_unit(root: Any, info: graphene.ResolveInfo) -> Any:
        loaders = context_of(info).loaders
        unit = loaders.units.peek(root.handling_unit)
        return unit if unit is not None else loaders.unit.load(root.handling_unit)

    @staticmethod
    def resolve_respondent(root: Any, info: graphene.ResolveInfo) -> Any:
        if root.respondent_name is None:
            return None
        return Respondent(uscc=root.respondent_uscc, name=root.respondent_name)

    @staticmethod
    def resolve_complainant(root: Any, info: graphene.ResolveInfo) -> Any:
        loader = context_of(info).loaders.complainant
        known, row = loader.peek(root.id)
        if known:
            return ComplainantView(root.id, row.name if row else None, row.phone if row else None, root.real_name)
        return _complainant(loader, root)

    @staticmethod
    def resolve_amount_involved(root: Any, info: graphene.ResolveInfo) -> str | None:
        return cents_to_money(root.amount_involved_cents)

    @staticmethod
    def resolve_recovered_amount(root: Any, info: graphene.ResolveInfo) -> str | None:
        return cents_to_money(root.recovered_amount_cents)

    @staticmethod
    async def resolve_status(root: Any, info: graphene.ResolveInfo) -> str:
        events = await context_of(info).loaders.events.load(root.id)
        return status_of([e.type for e in events or []])

    @staticmethod
    def resolve_events(root: Any, info: graphene.ResolveInfo) -> Awaitable[Any]:
        return context_of(info).loaders.events.load(root.id)

    @staticmethod
    async def resolve_deadlines(root: Any, info: graphene.ResolveInfo) -> list[Any]:
        ctx = context_of(info)
        events = await ctx.loaders.events.load(root.id)
        return deadlines_of(root, events or [], ctx.settings)

    @staticmethod
    def resolve_enterprise(root: Any, info: graphene.ResolveInfo) -> Any:
        return EnterpriseRef(root.respondent_uscc) if root.respondent_uscc else None

    @staticmethod
    def resolve_cases(root: Any, info: graphene.ResolveInfo) -> Awaitable[Any]:
        return context_of(info).loaders.cases.load(root.id)

    @staticmethod
    def resolve_supervision_orders(root: Any, info: graphene.ResolveInfo) -> Awaitable[Any]:
        return context_of(info).loaders.supervision_orders.load(root.id)

    @staticmethod
    async def resolve_incidents(root: Any, info: graphene.ResolveInfo) -> list[Any]:
        loaders = context_of(info).loaders
        ids = await loaders.incident_ids.load(root.id)
        if not ids:
            return []
        return [i for i in await loaders.incident.load_many(ids) if i is not None]


async def _complainant(loader: Any, root: Any) -> ComplainantView:
    row = await loader.load(root.id)
    return ComplainantView(root.id, row.name if row else None, row.phone if row else None, root.real_name)


@dataclass(frozen=True, slots=True)
class EnterpriseRef:
    uscc: str


class Enterprise(graphene.ObjectType):
    class Meta:
        description = (
            "A business complained about, by its Unified Social Credit Code. Its complaints, counts and cases "
            "cover only the records the caller can see."
        )

    uscc = graphene.String(required=True)
    credit_profile = graphene.Field(CreditProfile, description="Null when the credit system does not know it.")
    complaints = graphene.Field(
        lambda: _connection(), first=graphene.Int(default_value=50), after=graphene.String(), required=True
    )
    complaint_count = graphene.Int(required=True)
    cases = graphene.List(graphene.NonNull(Case), description="Cases filed from the visible complaints.")

    @staticmethod
    def resolve_credit_profile(root: EnterpriseRef, info: graphene.ResolveInfo) -> Awaitable[Any]:
        return context_of(info).loaders.enterprise.load(root.uscc)

    @staticmethod
    async def resolve_complaints(root: EnterpriseRef, info: graphene.ResolveInfo, first: int,
                                 after: str | None = None) -> Any:
        from gateway.api.gql.listing import ComplaintQuery

        return await ComplaintQuery.for_enterprise(context_of(info), root.uscc).page(first, after)

    @staticmethod
    async def resolve_complaint_count(root: EnterpriseRef, info: graphene.ResolveInfo) -> int:
        from gateway.api.gql.listing import ComplaintQuery

        return await ComplaintQuery.for_enterprise(context_of(info), root.uscc).count()

    @staticmethod
    async def resolve_cases(root: EnterpriseRef, info: graphene.ResolveInfo) -> list[Any]:
        from gateway.api.gql.listing import ComplaintQuery

        ctx = context_of(info)
        ids = await ComplaintQuery.for_enterprise(ctx, root.uscc).ids(limit=ENTERPRISE_CASES_SCAN)
        found = await ctx.loaders.cases.load_many(ids)
        cases = {c.case_no: c for group in found for c in group or []}
        return sorted(cases.values(), key=lambda c: c.filed_at, reverse=True)


# The complaints whose cases an enterprise lists: its most recent visible ones, a bounded number of batches.
ENTERPRISE_CASES_SCAN = 500


def _connection() -> Any:
    from gateway.api.gql.listing import ComplaintConnection

    return ComplaintConnection
