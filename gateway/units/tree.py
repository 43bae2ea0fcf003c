"""The org-unit tree (五级) in memory: every unit with its ancestors, read in one query.

Loading the unit file (records.md) and re-homing what hangs on a moved unit is `gateway.ingest.units_file`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.units.jurisdiction import Jurisdiction
from gateway.units.models import OrgUnit


@dataclass(frozen=True, slots=True)
class Unit:
    code: str
    name: str
    level: int
    parent_code: str | None
    ancestors: tuple[str | None, ...]  # codes at levels 1..5, the unit itself included


class UnitIndex:
    """Every unit by code, with its ancestors: enough to place a record in the tree without a query."""

    def __init__(self, units: dict[str, Unit]) -> None:
        self.units = units

    def __contains__(self, code: object) -> bool:
        return code in self.units

    def get(self, code: str) -> Unit | None:
        return self.units.get(code)

    def is_within(self, code: str, root: str) -> bool:
        """True when `code` is `root` or below it."""
        unit, top = self.units.get(code), self.units.get(root)
        return unit is not None and top is not None and unit.ancestors[top.level - 1] == root


async def load_units(session: AsyncSession) -> UnitIndex:
    """Every unit with its ancestors, read in one query."""
    rows = (await session.execute(select(OrgUnit))).scalars().all()
    return UnitIndex(
        {
            r.code: Unit(r.code, r.name, r.level, r.parent_code, (r.l1, r.l2, r.l3, r.l4, r.l5))
            for r in rows
        }
    )


async def jurisdiction_tree(session: AsyncSession, root: str, max_level: int = 4) -> list[Unit]:
    """`root` and the units below it down to `max_level`, in tree order (each unit before its children, siblings
    by code); [] for an unknown root. Level-5 units are left out by default: a report needs units below it."""
    top = await session.scalar(select(OrgUnit.level).where(OrgUnit.code == root))
    if top is None:
        return []
    rows = (await session.execute(
        select(OrgUnit).where(Jurisdiction(root, top).condition(OrgUnit.ancestor_columns()),
                              OrgUnit.level <= max_level)
    )).scalars().all()
    units = [Unit(r.code, r.name, r.level, r.parent_code, (r.l1, r.l2, r.l3, r.l4, r.l5)) for r in rows]
    return sorted(units, key=lambda u: tuple(a or "" for a in u.ancestors))
