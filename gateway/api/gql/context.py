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
from gateway.complaints.models import Complaint
from gateway.core.auth import Principal
from gateway.core.settings import Settings
from gateway.core.upstreams import Upstreams
from gateway.units.cache import UnitCache
from gateway.units.models import OrgUnit


@dataclass(frozen=True, slots=True)
class Scope:
    """The caller's jurisdiction (属地): its unit and everything below it."""

    unit: str
    level: int

    def complaint_filter(self) -> ColumnElement[bool]:
        # Each record carries its handling unit's ancestors by level: one indexed equality, no recursion.
        column: Any = getattr(Complaint, f"u{self.level}")
        return column == self.unit  # type: ignore[no-any-return]

    def unit_filter(self) -> ColumnElement[bool]:
        column: Any = getattr(OrgUnit, f"l{self.level}")
        return column == self.unit  # type: ignore[no-any-return]

    def sees_complaint(self, row: Any) -> bool:
        return bool(getattr(row, f"u{self.level}") == self.unit)

    def sees_unit(self, row: Any) -> bool:
        return bool(getattr(row, f"l{self.level}") == self.unit)

    @classmethod
    async def of(cls, units: UnitCache, code: str) -> Scope | None:
        """The jurisdiction of a caller at unit `code`; None when no such unit exists."""
        unit = await units.get(code)
        return None if unit is None else cls(code, int(unit.level))


@dataclass
class RequestContext:
    principal: Principal
    scope: Scope
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

    def require(self, role: str) -> None:
        if not self.principal.has(role):
            raise errors.forbidden(f"this needs the role {role!r}")


def context_of(info: Any) -> RequestContext:
    ctx: RequestContext = info.context
    return ctx
