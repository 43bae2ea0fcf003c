"""Who may do what in supervision (supervision.md): roles, the caller's jurisdiction, and the errors.

Every domain function of this package takes the caller's `Principal` and checks here, so the GraphQL
resolvers (and any REST edge) stay thin and cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.core.auth import Principal
from gateway.units.jurisdiction import Jurisdiction, unit_ancestors
from gateway.units.models import OrgUnit

FORBIDDEN = "FORBIDDEN"
NOT_FOUND = "NOT_FOUND"
BAD_USER_INPUT = "BAD_USER_INPUT"

WATCH_ROLES = ("supervisor", "evaluator")  # deadline lights
ORDER_READ_ROLES = ("supervisor", "operator", "evaluator")  # supervisionOrders


class SupervisionError(ValueError):
    """A request supervision refuses; `code` is the interfaces.md error code (FORBIDDEN, NOT_FOUND,
    BAD_USER_INPUT) and `argument` the offending argument, when there is one."""

    def __init__(self, message: str, code: str = BAD_USER_INPUT, argument: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.argument = argument


def require_any(principal: Principal, roles: Iterable[str]) -> None:
    wanted = tuple(roles)
    if not any(principal.has(r) for r in wanted):
        raise SupervisionError(f"this needs one of the roles {', '.join(wanted)}", FORBIDDEN)


def subtree(unit: Any) -> Jurisdiction:
    """A unit row's subtree: the unit and everything below it (the jurisdiction rule of gateway.units)."""
    return Jurisdiction(unit.code, int(unit.level))


def within(row: Any, unit: Any) -> bool:
    """True when unit row `row` is unit row `unit` or below it."""
    return subtree(unit).contains(unit_ancestors(row))


async def unit_rows(session: AsyncSession, codes: Iterable[str]) -> dict[str, Row[Any]]:
    """Unit rows by code (unknown codes left out), in one query."""
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    rows = await session.execute(select(OrgUnit.__table__).where(OrgUnit.code.in_(wanted)))
    return {r.code: r for r in rows}


async def caller_and_unit(session: AsyncSession, principal: Principal, unit: str) -> tuple[Row[Any], Row[Any]]:
    """The caller's unit row and `unit`'s, when `unit` is the caller's unit or below it; FORBIDDEN otherwise.
    An unknown unit is refused like a foreign one, so that the answer does not reveal which codes exist
    (the KPI report's rule)."""
    rows = await unit_rows(session, (principal.unit, unit))
    caller, target = rows.get(principal.unit), rows.get(unit)
    if caller is None or target is None or not within(target, caller):
        raise SupervisionError(f"unit {unit} is not your unit nor below it", FORBIDDEN, "unit")
    return caller, target


async def caller_unit(session: AsyncSession, principal: Principal) -> Row[Any]:
    """The caller's unit row; FORBIDDEN when the token names a unit that does not exist."""
    row = (await unit_rows(session, (principal.unit,))).get(principal.unit)
    if row is None:
        raise SupervisionError(f"your unit {principal.unit} is not a known unit", FORBIDDEN)
    return row


def check_first(first: int | None, default: int = 50, most: int = 500) -> int:
    """A page size: null means the default; otherwise 0..most."""
    if first is None:
        return default
    if not 0 <= first <= most:
        raise SupervisionError(f"first must be between 0 and {most}, got {first}", argument="first")
    return first
