"""The org-unit file of records.md (`code,name,level,parent_code`): parsing, checking the tree it makes with
the stored one, loading it, and re-homing everything that hangs on a unit that moved (records, KPI facts,
flags, alerts).

A file is loaded whole or not at all (the caller's transaction); a rejection names the line.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.complaints.models import Complaint
from gateway.core.jsontext import text_problem
from gateway.flags.store import rehome_flags_and_alerts
from gateway.reports.facts import refresh_fact_units
from gateway.units.models import OrgUnit
from gateway.units.tree import Unit, UnitIndex, load_units

COLUMNS = ("code", "name", "level", "parent_code")
NAME_MAX = 200  # org_units.name


class UnitFileError(ValueError):
    """The whole file is rejected; the message names the line."""


@dataclass(frozen=True, slots=True)
class UnitLine:
    """One line of the unit file, checked on its own (`line`: its number in the file)."""

    line: int
    code: str
    name: str
    level: int
    parent_code: str | None


def decode_units_file(data: bytes) -> str:
    """The file's text (UTF-8, a byte-order mark allowed); UnitFileError naming the line that is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UnitFileError(f"line {line}: not valid UTF-8 (byte {exc.start + 1} of the file)") from None


def parse_units_csv(text: str) -> list[UnitLine]:
    """Parse and check each line on its own; the tree as a whole is checked by `check_tree`."""
    for number, line in enumerate(text.split("\n"), start=1):  # before csv, which stops at a NUL
        reason = text_problem(line)
        if reason is not None:
            raise UnitFileError(f"line {number}: {reason}")
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = next(reader)
    except StopIteration:
        raise UnitFileError("line 1: the file is empty; expected the header code,name,level,parent_code") from None
    if tuple(h.strip() for h in header) != COLUMNS:
        raise UnitFileError(f"line 1: header must be {','.join(COLUMNS)}, got {','.join(header)}")
    rows: list[UnitLine] = []
    for line_no, cells in enumerate(reader, start=2):
        if not cells or all(not c.strip() for c in cells):
            continue
        if len(cells) != len(COLUMNS):
            raise UnitFileError(f"line {line_no}: expected {len(COLUMNS)} columns, got {len(cells)}")
        code, name, level_text, parent = (c.strip() for c in cells)
        if level_text not in ("1", "2", "3", "4", "5"):
            raise UnitFileError(f"line {line_no}: level must be 1 to 5, got {level_text!r}")
        level = int(level_text)
        want = 9 if level == 5 else 6
        if len(code) != want or not (code.isascii() and code.isdigit()):  # "٥١٠٠٠٠" is digits, not a code
            raise UnitFileError(f"line {line_no}: code {code!r} must be {want} digits for a level-{level} unit")
        if not name:
            raise UnitFileError(f"line {line_no}: name is empty")
        if len(name) > NAME_MAX:
            raise UnitFileError(f"line {line_no}: name is longer than {NAME_MAX} characters")
        if level == 1 and parent:
            raise UnitFileError(f"line {line_no}: a level-1 unit has no parent_code")
        if level > 1 and not parent:
            raise UnitFileError(f"line {line_no}: parent_code is required for a level-{level} unit")
        if level == 5 and code[:6] != parent:
            raise UnitFileError(f"line {line_no}: station {code} must be its county code {parent} plus 3 digits")
        rows.append(UnitLine(line_no, code, name, level, parent or None))
    return rows


def check_tree(rows: list[UnitLine], existing: UnitIndex) -> dict[str, Unit]:
    """The merged tree (stored units overridden by the file), or UnitFileError naming the first bad line."""
    seen: dict[str, int] = {}
    for row in rows:
        if row.code in seen:
            raise UnitFileError(f"line {row.line}: duplicate code {row.code} (first on line {seen[row.code]})")
        seen[row.code] = row.line
    levels = {code: u.level for code, u in existing.units.items()}
    parents = {code: u.parent_code for code, u in existing.units.items()}
    names = {code: u.name for code, u in existing.units.items()}
    lines: dict[str, int] = {}
    for row in rows:
        levels[row.code], parents[row.code], names[row.code], lines[row.code] = (
            row.level, row.parent_code, row.name, row.line,
        )
    merged: dict[str, Unit] = {}

    def place(code: str, trail: tuple[str, ...]) -> Unit:
        if code in merged:
            return merged[code]
        line = lines.get(code)
        where = f"line {line}" if line else f"stored unit {code}"
        if code in trail:
            raise UnitFileError(f"{where}: cycle through {' -> '.join((*trail, code))}")
        parent = parents[code]
        ancestors: list[str | None] = [None] * 5
        if parent is not None:
            if parent not in levels:
                raise UnitFileError(f"{where}: unknown parent_code {parent}")
            if levels[parent] != levels[code] - 1:
                raise UnitFileError(
                    f"{where}: parent {parent} is level {levels[parent]}, "
                    f"but a level-{levels[code]} unit needs a level-{levels[code] - 1} parent"
                )
            ancestors = list(place(parent, (*trail, code)).ancestors)
        ancestors[levels[code] - 1] = code
        unit = Unit(code, names[code], levels[code], parent, tuple(ancestors))
        merged[code] = unit
        return unit

    for code in sorted(levels, key=lambda c: levels[c]):
        place(code, ())
    return merged


async def import_units(session: AsyncSession, text: str) -> tuple[int, int]:
    """Load the CSV into the tree; returns (added, updated). All or nothing: the caller's transaction."""
    existing = await load_units(session)
    rows = parse_units_csv(text)
    merged = check_tree(rows, existing)
    added = updated = 0
    # Parents first, so foreign keys hold at every insert.
    for row in sorted(rows, key=lambda r: r.level):
        unit = merged[row.code]
        old = existing.get(row.code)
        if old is None:
            session.add(OrgUnit(code=row.code, **_values(unit)))
            added += 1
        elif (old.name, old.level, old.parent_code, old.ancestors) != (
            unit.name, unit.level, unit.parent_code, unit.ancestors,
        ):
            await session.execute(update(OrgUnit).where(OrgUnit.code == row.code).values(**_values(unit)))
            updated += 1
        await session.flush()
    # A moved unit's descendants carry its old ancestors too, whether the file names them or not.
    moved = {code for code, unit in merged.items()
             if code in existing and existing.units[code].ancestors != unit.ancestors}
    if moved:
        in_file = {r.code for r in rows}
        for code in sorted(moved - in_file):
            await session.execute(update(OrgUnit).where(OrgUnit.code == code).values(**_ancestors(merged[code])))
        await rehome(session, moved)
    return added, updated


def _ancestors(unit: Unit) -> dict[str, str | None]:
    return {f"l{n + 1}": unit.ancestors[n] for n in range(5)}


def _values(unit: Unit) -> dict[str, object]:
    return {"name": unit.name, "level": unit.level, "parent_code": unit.parent_code, **_ancestors(unit)}


async def rehome(session: AsyncSession, moved: set[str]) -> None:
    """Everything that hangs on a unit follows the units that `moved` (their codes): records, their KPI
    facts, flags (the issuing unit's ancestors) and early-warning alerts (the county's)."""
    await refresh_record_ancestors(session)
    await refresh_fact_units(session)  # derived from records: follows them
    await rehome_flags_and_alerts(session, moved)


async def refresh_record_ancestors(session: AsyncSession) -> None:
    """Recompute each record's u1..u5 from its handling unit (after the tree changed shape)."""
    cols = {f"u{n}": select(getattr(OrgUnit, f"l{n}")).where(OrgUnit.code == Complaint.handling_unit)
            .scalar_subquery() for n in range(1, 6)}
    await session.execute(update(Complaint).values(**cols))
