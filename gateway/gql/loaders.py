"""The request's DataLoaders: one per kind of lookup, store and upstream alike, ≤ 100 keys per batch.

Store loaders read plain rows (no ORM identity map: nothing here is written back). Upstream loaders go
through the connectors, whose typed failures (`.code`, `.system`) reach every field that waited on them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from functools import cached_property
from typing import Any

from sqlalchemy import Row, Table, select
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.models import Case, Enterprise, Incident
from gateway.gql.dataloader import DataLoader
from gateway.gql.models import IncidentLink
from gateway.models import Complainant, Complaint, Event, OrgUnit
from gateway.upstreams import Upstreams

BATCH = 100  # ids per upstream request at most (external-systems.md)

_COMPLAINTS: Table = Complaint.__table__  # type: ignore[assignment]
_COMPLAINANTS: Table = Complainant.__table__  # type: ignore[assignment]
_EVENTS: Table = Event.__table__  # type: ignore[assignment]
_UNITS: Table = OrgUnit.__table__  # type: ignore[assignment]


def _grouped(rows: Any, key: str) -> dict[Any, list[Any]]:
    out: dict[Any, list[Any]] = defaultdict(list)
    for row in rows:
        out[getattr(row, key)].append(row)
    return out


class Loaders:
    def __init__(self, engine: AsyncEngine, upstreams: Upstreams) -> None:
        self.engine = engine
        self.upstreams = upstreams

    async def _rows(self, stmt: Any) -> list[Row[Any]]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(stmt)).all())

    # ------------------------------------------------------------------------------------------- store

    @cached_property
    def complaint(self) -> DataLoader[str, Row[Any]]:
        async def batch(ids: list[str]) -> Mapping[str, Row[Any]]:
            rows = await self._rows(select(_COMPLAINTS).where(_COMPLAINTS.c.id.in_(ids)))
            return {r.id: r for r in rows}

        return DataLoader(batch, max_batch=BATCH)

    @cached_property
    def complainant(self) -> DataLoader[str, Row[Any]]:
        async def batch(ids: list[str]) -> Mapping[str, Row[Any]]:
            rows = await self._rows(select(_COMPLAINANTS).where(_COMPLAINANTS.c.complaint_id.in_(ids)))
            return {r.complaint_id: r for r in rows}

        return DataLoader(batch, max_batch=BATCH)

    @cached_property
    def events(self) -> DataLoader[str, list[Row[Any]]]:
        async def batch(ids: list[str]) -> Mapping[str, list[Row[Any]]]:
            rows = await self._rows(
                select(_EVENTS).where(_EVENTS.c.complaint_id.in_(ids)).order_by(_EVENTS.c.complaint_id, _EVENTS.c.seq)
            )
            return _grouped(rows, "complaint_id")

        return DataLoader(batch, max_batch=BATCH, default=[])

    @cached_property
    def unit(self) -> DataLoader[str, Row[Any]]:
        async def batch(codes: list[str]) -> Mapping[str, Row[Any]]:
            rows = await self._rows(select(_UNITS).where(_UNITS.c.code.in_(codes)))
            return {r.code: r for r in rows}

        return DataLoader(batch, max_batch=BATCH)

    @cached_property
    def children(self) -> DataLoader[str, list[Row[Any]]]:
        async def batch(codes: list[str]) -> Mapping[str, list[Row[Any]]]:
            rows = await self._rows(select(_UNITS).where(_UNITS.c.parent_code.in_(codes)).order_by(_UNITS.c.code))
            return _grouped(rows, "parent_code")

        return DataLoader(batch, max_batch=BATCH, default=[])

    @cached_property
    def incident_ids(self) -> DataLoader[str, list[str]]:
        async def batch(ids: list[str]) -> Mapping[str, list[str]]:
            rows = await self._rows(
                select(IncidentLink.complaint_id, IncidentLink.incident_id)
                .where(IncidentLink.complaint_id.in_(ids))
                .order_by(IncidentLink.created_at, IncidentLink.incident_id)
            )
            out: dict[str, list[str]] = defaultdict(list)
            for cid, iid in rows:
                out[cid].append(iid)
            return out

        return DataLoader(batch, max_batch=BATCH, default=[])

    # ------------------------------------------------------------------------------------------- upstream

    @cached_property
    def enterprise(self) -> DataLoader[str, Enterprise]:
        async def batch(usccs: list[str]) -> Mapping[str, Enterprise]:
            return {e.uscc: e for e in await self.upstreams.credit.enterprises(usccs)}

        return DataLoader(batch, max_batch=BATCH)

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

        return DataLoader(batch, max_batch=BATCH, default=[])

    @cached_property
    def incident(self) -> DataLoader[str, Incident]:
        async def batch(ids: list[str]) -> Mapping[str, Incident]:
            return {i.incident_id: i for i in await self.upstreams.emergency.incidents_by_ids(ids)}

        return DataLoader(batch, max_batch=BATCH)
