"""Jurisdiction (属地): a caller sees its own unit and everything below it — the one rule, written once.

Everything that hangs on a unit carries that unit's ancestors by level (itself included): `l1`..`l5` on
units, `u1`..`u5` on records and KPI facts, `i1`..`i5` on flags (the issuing unit), `a1`..`a3` plus the
county on early-warning alerts. "Within the caller's unit U of level L" is then one indexed equality,
`<ancestor column of level L> = U`, with no recursive query. `Jurisdiction.condition` builds it for any
such set of columns; `Jurisdiction.contains` is the same test on values already read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, false, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.units.models import OrgUnit, is_unit_code


@dataclass(frozen=True, slots=True)
class Jurisdiction:
    """The unit `unit` (of `level`, 1..5) and everything below it."""

    unit: str
    level: int

    def condition(self, ancestors: Sequence[Any]) -> ColumnElement[bool]:
        """SQL: the rows whose ancestor columns (levels 1..5, in order) place them within this jurisdiction.

        A level without a column (None: e.g. alerts carry no station) matches nothing.
        """
        column = ancestors[self.level - 1]
        if column is None:
            return false()
        return column == self.unit  # type: ignore[no-any-return]

    def contains(self, ancestors: Sequence[str | None]) -> bool:
        """The same test on ancestor codes already read (levels 1..5, in order)."""
        return ancestors[self.level - 1] == self.unit


def unit_ancestors(row: Any) -> tuple[str | None, ...]:
    """A unit row's ancestor codes (`l1`..`l5`)."""
    return (row.l1, row.l2, row.l3, row.l4, row.l5)


async def jurisdiction_of(session: AsyncSession, code: str) -> Jurisdiction | None:
    """The jurisdiction of a caller at unit `code`; None when no such unit exists (one query)."""
    if not is_unit_code(code):  # not even the shape of a code (U+0000 and all): no query
        return None
    level = await session.scalar(select(OrgUnit.level).where(OrgUnit.code == code))
    return None if level is None else Jurisdiction(code, int(level))


async def unit_within(session: AsyncSession, code: str, jurisdiction: Jurisdiction) -> bool:
    """True when unit `code` exists and lies within `jurisdiction` (one query). An unknown unit is not:
    callers answer it like a foreign one, so that codes are not revealed."""
    if not is_unit_code(code):
        return False
    found = await session.scalar(
        select(OrgUnit.code).where(OrgUnit.code == code, jurisdiction.condition(OrgUnit.ancestor_columns()))
    )
    return found is not None


async def caller_sees_unit(session: AsyncSession, caller_unit: str, code: str) -> bool:
    """True when a caller at `caller_unit` may see unit `code` (both must exist): two indexed lookups."""
    jurisdiction = await jurisdiction_of(session, caller_unit)
    return jurisdiction is not None and await unit_within(session, code, jurisdiction)
