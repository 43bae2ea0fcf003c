"""The org-unit tree in memory, shared by the requests of one process and refreshed every TTL_S seconds.

Units change rarely (an import of the unit file) and are read by nearly every request (the caller's
jurisdiction, `handlingUnit`, `parent`, `children`): reading them from a snapshot takes no database round
trip. A code missing from the snapshot triggers a reload (at most once per MISS_RELOAD_S), so a newly
imported unit is seen at once; a renamed or moved one within TTL_S.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any

from sqlalchemy import Row, Table, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.units.jurisdiction import Jurisdiction
from gateway.units.models import OrgUnit

_UNITS: Table = OrgUnit.__table__  # type: ignore[assignment]


class UnitCache:
    TTL_S = 60.0
    MISS_RELOAD_S = 5.0

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._by_code: dict[str, Row[Any]] = {}
        self._children: dict[str, list[Row[Any]]] = {}
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    async def _reload(self, older_than: float) -> None:
        async with self._lock:
            if time.monotonic() - self._loaded_at < older_than:
                return  # another request reloaded while this one waited
            async with self.engine.connect() as conn:
                rows = list((await conn.execute(select(_UNITS).order_by(_UNITS.c.code))).all())
            children: dict[str, list[Row[Any]]] = defaultdict(list)
            for row in rows:
                if row.parent_code is not None:
                    children[row.parent_code].append(row)
            self._by_code = {r.code: r for r in rows}
            self._children = dict(children)
            self._loaded_at = time.monotonic()

    async def _fresh(self) -> None:
        if time.monotonic() - self._loaded_at >= self.TTL_S:
            await self._reload(self.TTL_S)

    def peek(self, code: str) -> Row[Any] | None:
        """The unit from a fresh snapshot, without awaiting; None when the snapshot is stale or lacks it
        (then ask `get_many`, which reloads)."""
        if time.monotonic() - self._loaded_at >= self.TTL_S:
            return None
        return self._by_code.get(code)

    async def get_many(self, codes: list[str]) -> dict[str, Row[Any]]:
        """The units of `codes` that exist, by code (rows of `org_units`); a code not in the snapshot reloads it first.
        """
        await self._fresh()
        if any(c not in self._by_code for c in codes):
            await self._reload(self.MISS_RELOAD_S)
        return {c: self._by_code[c] for c in codes if c in self._by_code}

    async def children_of(self, codes: list[str]) -> dict[str, list[Row[Any]]]:
        """The children of each unit of `codes` (an empty list for a leaf or an unknown code)."""
        await self._fresh()
        return {c: self._children.get(c, []) for c in codes}

    async def get(self, code: str) -> Row[Any] | None:
        """The unit `code`, or None when there is no such unit."""
        return (await self.get_many([code])).get(code)

    async def jurisdiction_of(self, code: str) -> Jurisdiction | None:
        """The jurisdiction of a caller at unit `code`; None when no such unit exists."""
        unit = await self.get(code)
        return None if unit is None else Jurisdiction(code, int(unit.level))
