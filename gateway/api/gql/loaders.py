"""The request's DataLoaders: one per kind of lookup, store and upstream alike, ≤ 100 keys per batch.

Store loaders read plain rows (no ORM identity map: nothing here is written back). Upstream loaders go
through the connectors, whose typed failures (`.code`, `.system`) reach every field that waited on them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import Row, Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from connectors.models import Case, Enterprise, Incident
from gateway.api.gql.dataloader import DataLoader
from gateway.complaints.models import Complainant, Complaint, Event
from gateway.core.upstreams import Upstreams
from gateway.flags.models import IncidentLink
from gateway.supervision.orders import Order, orders_of_complaints
from gateway.units.cache import UnitCache

KEYS_PER_BATCH = 100  # keys a DataLoader sends at once: at most 100 ids per upstream request (external-systems.md)

_COMPLAINTS: Table = Complaint.__table__  # type: ignore[assignment]
_COMPLAINANTS: Table = Complainant.__table__  # type: ignore[assignment]
_EVENTS: Table = Event.__table__  # type: ignore[assignment]


# A record with its complainant's personal data in one round trip: the data stays in the process until a
# `complainant` field masks it, or reads it in clear and audits the read (pii.py).
COMPLAINT_SELECT = select(
    _COMPLAINTS, _COMPLAINANTS.c.name.label("complainant_name"), _COMPLAINANTS.c.phone.label("complainant_phone")
).join_from(_COMPLAINTS, _COMPLAINANTS, _COMPLAINANTS.c.complaint_id == _COMPLAINTS.c.id, isouter=True)


# Lookups by a batch of keys, built once with an expanding parameter: SQLAlchemy memoizes a statement's cache
# key on the statement object, so the same object costs microseconds per execution where a statement built
# per batch costs a fresh cache key (about 0.15 ms for this wide select) every time.
_COMPLAINTS_BY_ID = COMPLAINT_SELECT.where(_COMPLAINTS.c.id.in_(bindparam("ids", expanding=True)))
_COMPLAINANTS_BY_ID = select(_COMPLAINANTS).where(_COMPLAINANTS.c.complaint_id.in_(bindparam("ids", expanding=True)))
_EVENTS_BY_COMPLAINT = (
    select(_EVENTS).where(_EVENTS.c.complaint_id.in_(bindparam("ids", expanding=True)))
    .order_by(_EVENTS.c.complaint_id, _EVENTS.c.seq)
)
_INCIDENTS_BY_COMPLAINT = (
    select(IncidentLink.complaint_id, IncidentLink.incident_id)
    .where(IncidentLink.complaint_id.in_(bindparam("ids", expanding=True)))
    .order_by(IncidentLink.created_at, IncidentLink.incident_id)
)
# The record with its incident links, one row per link (one row with a null link when there is none): a query
# that asks for a record's incidents needs both before the emergency system can be asked, and one round trip
# to the store costs about half of two side by side (bench/graphql_bench.py, fan-out).
_LINKS: Table = IncidentLink.__table__  # type: ignore[assignment]
_COMPLAINTS_WITH_INCIDENTS_BY_ID = (
    COMPLAINT_SELECT.add_columns(_LINKS.c.incident_id.label("linked_incident_id"))
    .outerjoin(_LINKS, _LINKS.c.complaint_id == _COMPLAINTS.c.id)
    .where(_COMPLAINTS.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_COMPLAINTS.c.id, _LINKS.c.created_at, _LINKS.c.incident_id)
)


@dataclass(frozen=True, slots=True)
class PersonalData:
    name: str | None
    phone: str | None


def _grouped(rows: Any, key: str) -> dict[Any, list[Any]]:
    out: dict[Any, list[Any]] = defaultdict(list)
    for row in rows:
        out[getattr(row, key)].append(row)
    return out


class Loaders:
    def __init__(self, engine: AsyncEngine, upstreams: Upstreams, units: UnitCache) -> None:
        self.engine = engine
        self.upstreams = upstreams
        self.units = units

    async def _rows(self, stmt: Any, params: Mapping[str, Any] | None = None) -> list[Row[Any]]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(stmt, params)).all())

    # ------------------------------------------------------------------------------------------- store

    def remember(self, rows: list[Row[Any]]) -> None:
        """Rows of COMPLAINT_SELECT read elsewhere (a list page): later lookups of them cost nothing."""
        for row in rows:
            self.complaint.prime(row.id, row)
            self.complainant.prime(row.id, PersonalData(row.complainant_name, row.complainant_phone))

    @cached_property
    def complaint(self) -> DataLoader[str, Row[Any]]:
        async def batch(ids: list[str]) -> Mapping[str, Row[Any]]:
            rows = await self._rows(_COMPLAINTS_BY_ID, {"ids": ids})
            for row in rows:
                self.complainant.prime(row.id, PersonalData(row.complainant_name, row.complainant_phone))
            return {r.id: r for r in rows}

        return DataLoader(batch, max_batch=KEYS_PER_BATCH)

    @cached_property
    def complaint_with_incident_ids(self) -> DataLoader[str, Row[Any]]:
        """The record (as `complaint` loads it) read together with its incident links, which prime
        `incident_ids`: for a query that selects both."""

        async def batch(ids: list[str]) -> Mapping[str, Row[Any]]:
            rows = await self._rows(_COMPLAINTS_WITH_INCIDENTS_BY_ID, {"ids": ids})
            found: dict[str, Row[Any]] = {}
            links: dict[str, list[str]] = defaultdict(list)
            for row in rows:
                found.setdefault(row.id, row)
                if row.linked_incident_id is not None:
                    links[row.id].append(row.linked_incident_id)
            for cid, row in found.items():
                self.complaint.prime(cid, row)
                self.complainant.prime(cid, PersonalData(row.complainant_name, row.complainant_phone))
                self.incident_ids.prime(cid, links.get(cid, []))
            return found

        return DataLoader(batch, max_batch=KEYS_PER_BATCH)

    @cached_property
    def complainant(self) -> DataLoader[str, PersonalData]:
        async def batch(ids: list[str]) -> Mapping[str, PersonalData]:
            rows = await self._rows(_COMPLAINANTS_BY_ID, {"ids": ids})
            return {r.complaint_id: PersonalData(r.name, r.phone) for r in rows}

        return DataLoader(batch, max_batch=KEYS_PER_BATCH)

    @cached_property
    def events(self) -> DataLoader[str, list[Row[Any]]]:
        async def batch(ids: list[str]) -> Mapping[str, list[Row[Any]]]:
            rows = await self._rows(_EVENTS_BY_COMPLAINT, {"ids": ids})
            return _grouped(rows, "complaint_id")

        return DataLoader(batch, max_batch=KEYS_PER_BATCH, default=[])

    @cached_property
    def unit(self) -> DataLoader[str, Row[Any]]:
        return DataLoader(self.units.get_many, max_batch=KEYS_PER_BATCH)

    @cached_property
    def children(self) -> DataLoader[str, list[Row[Any]]]:
        return DataLoader(self.units.children_of, max_batch=KEYS_PER_BATCH, default=[])

    @cached_property
    def incident_ids(self) -> DataLoader[str, list[str]]:
        async def batch(ids: list[str]) -> Mapping[str, list[str]]:
            rows = await self._rows(_INCIDENTS_BY_COMPLAINT, {"ids": ids})
            out: dict[str, list[str]] = defaultdict(list)
            for cid, iid in rows:
                out[cid].append(iid)
            return out

        return DataLoader(batch, max_batch=KEYS_PER_BATCH, default=[])

    @cached_property
    def supervision_orders(self) -> DataLoader[str, list[Order]]:
        """Supervision orders by complaint id, newest first."""

        async def batch(ids: list[str]) -> Mapping[str, list[Order]]:
            async with AsyncSession(self.engine) as session:
                return await orders_of_complaints(session, ids)

        return DataLoader(batch, max_batch=KEYS_PER_BATCH, default=[])

    # ------------------------------------------------------------------------------------------- upstream

    @cached_property
    def enterprise(self) -> DataLoader[str, Enterprise]:
        async def batch(usccs: list[str]) -> Mapping[str, Enterprise]:
            return {e.uscc: e for e in await self.upstreams.credit.enterprises(usccs)}

        return DataLoader(batch, max_batch=KEYS_PER_BATCH)

    @cached_property
    def cases(self) -> DataLoader[str, list[Case]]:
        """Cases by complaint id: one request answers every complaint of the batch."""

        async def batch(ids: list[str]) -> Mapping[str, list[Case]]:
            wanted = set(ids)
            out: dict[str, list[Case]] = defaultdict(list)
            for case in await self.upstreams.enforcement.cases_by_complaint_ids(ids):
                for cid in case.complaint_ids:
                    if cid in wanted:
                        out[cid].append(case)
            return out

        return DataLoader(batch, max_batch=KEYS_PER_BATCH, default=[])

    @cached_property
    def incident(self) -> DataLoader[str, Incident]:
        async def batch(ids: list[str]) -> Mapping[str, Incident]:
            return {i.incident_id: i for i in await self.upstreams.emergency.incidents_by_ids(ids)}

        return DataLoader(batch, max_batch=KEYS_PER_BATCH)
