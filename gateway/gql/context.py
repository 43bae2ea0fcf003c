"""One request's context: who is asking, what they may see, and the request's own DataLoaders."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gateway.auth import Principal
from gateway.gql import errors
from gateway.gql.loaders import Loaders
from gateway.models import Complaint, OrgUnit
from gateway.settings import Settings
from gateway.upstreams import Upstreams


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


class _ScopeCache:
    """Callers' units by code for a short while: the tree changes rarely, requests come often."""

    TTL_S = 30.0

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Scope | None]] = {}

    async def get(self, engine: AsyncEngine, code: str) -> Scope | None:
        now = time.monotonic()
        hit = self._entries.get(code)
        if hit is not None and now - hit[0] < self.TTL_S:
            return hit[1]
        async with engine.connect() as conn:
            level = (await conn.execute(select(OrgUnit.level).where(OrgUnit.code == code))).scalar_one_or_none()
        scope = None if level is None else Scope(code, int(level))
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[code] = (now, scope)
        return scope


SCOPES = _ScopeCache()


@dataclass
class RequestContext:
    principal: Principal
    scope: Scope
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    upstreams: Upstreams
    request_id: str
    # complaint id -> personal-data fields read in clear, written to the audit log before the answer leaves
    pii_reads: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    @cached_property
    def loaders(self) -> Loaders:
        return Loaders(self.engine, self.upstreams)

    def require(self, role: str) -> None:
        if not self.principal.has(role):
            raise errors.forbidden(f"this needs the role {role!r}")


def context_of(info: Any) -> RequestContext:
    ctx: RequestContext = info.context
    return ctx
