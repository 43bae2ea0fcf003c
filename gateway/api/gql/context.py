"""One request's context: who is asking, what they may see, and the request's own DataLoaders."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gateway.api.gql import errors
from gateway.api.gql.loaders import Loaders
from gateway.complaints.models import Complaint, record_ancestors
from gateway.core.auth import Principal
from gateway.core.settings import Settings
from gateway.core.upstreams import Upstreams
from gateway.units.cache import UnitCache
from gateway.units.jurisdiction import Jurisdiction, unit_ancestors


@dataclass
class RequestContext:
    principal: Principal
    jurisdiction: Jurisdiction  # the caller's (属地): its unit and everything below it
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    upstreams: Upstreams
    units: UnitCache
    request_id: str
    # complaint id -> personal-data fields read in clear, written to the audit log before the answer leaves
    pii_reads: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    @cached_property
    def loaders(self) -> Loaders:
        return Loaders(self.engine, self.upstreams, self.units)

    def complaint_filter(self) -> ColumnElement[bool]:
        """SQL: the records this caller may see."""
        return self.jurisdiction.condition(Complaint.ancestor_columns())

    def sees_complaint(self, row: Any) -> bool:
        return self.jurisdiction.contains(record_ancestors(row))

    def sees_unit(self, row: Any) -> bool:
        return self.jurisdiction.contains(unit_ancestors(row))

    def require(self, role: str) -> None:
        if not self.principal.has(role):
            raise errors.forbidden(f"this needs the role {role!r}")


def context_of(info: Any) -> RequestContext:
    ctx: RequestContext = info.context
    return ctx
