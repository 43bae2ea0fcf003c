"""The org-unit table (五级: national, province, city, county, station).

Each unit carries its ancestors' codes by level (`l1`..`l5`, itself included), so that "this unit or below"
is one indexed equality on the column of the asking unit's level.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ForeignKey, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.core.models import Base

LEVELS = (1, 2, 3, 4, 5)
_UNIT_CODE = re.compile(r"[0-9]{6}(?:[0-9]{3})?")


def is_unit_code(text: str) -> bool:
    """Whether `text` has the shape of a unit code (records.md): 6 ASCII digits, or 9 for a station."""
    return _UNIT_CODE.fullmatch(text) is not None


class OrgUnit(Base):
    __tablename__ = "org_units"

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[int] = mapped_column(SmallInteger)
    parent_code: Mapped[str | None] = mapped_column(String(12), ForeignKey("org_units.code"), index=True)
    # Ancestor codes by level, the unit itself included; null below the unit's own level.
    l1: Mapped[str | None] = mapped_column(String(12), index=True)
    l2: Mapped[str | None] = mapped_column(String(12), index=True)
    l3: Mapped[str | None] = mapped_column(String(12), index=True)
    l4: Mapped[str | None] = mapped_column(String(12), index=True)
    l5: Mapped[str | None] = mapped_column(String(12))

    @classmethod
    def ancestor_columns(cls) -> tuple[Any, ...]:
        """`l1`..`l5`, for `gateway.units.jurisdiction.Jurisdiction.condition`."""
        return (cls.l1, cls.l2, cls.l3, cls.l4, cls.l5)
