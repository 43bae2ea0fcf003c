"""The `complaints` filter (`ComplaintFilter`, interfaces.md) read once, as SQL conditions on `complaints`.

One reading serves the `complaints` list and the analysis fields (`trends`, `series`, supervision.md), so a
filter means the same records everywhere. Only `overdue` is not a condition here: it depends on now and the
working-day calendar, and each caller decides how to evaluate it (the list walks records, analysis asks the
KPI obligation facts).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, or_

from gateway.complaints.models import Complaint
from gateway.complaints.records import Category, Channel, Hotline, Kind, Urgency
from gateway.complaints.status import ComplaintStatusValue, status_condition
from gateway.core.time import parse_instant
from gateway.units.jurisdiction import Jurisdiction

_COMPLAINTS: Table = Complaint.__table__  # type: ignore[assignment]
USCC_PATTERN = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{18}$")
HOTLINES = frozenset(h.value for h in Hotline)
# The filter's list fields and the column each one matches.
LIST_FIELDS = ("kind", "channel", "urgency", "category", "hotline")
FIELDS = (*LIST_FIELDS, "unit", "respondent_uscc", "received_from", "received_to", "status", "overdue")

# The level of a unit code, or None when no such unit exists.
UnitLevel = Callable[[str], Awaitable[int | None]]


class FilterError(ValueError):
    """A filter value that cannot mean anything (unknown hotline or unit, bad USCC, naive instant)."""


@dataclass
class ComplaintConditions:
    conditions: list[ColumnElement[bool]] = field(default_factory=list)
    overdue: bool | None = None  # with (True) or without (False) an obligation past its due date; None: either


def _value(v: Any) -> Any:
    return getattr(v, "value", v)


def _aware(value: Any, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise FilterError(f"filter.{name}: give an instant with an offset, e.g. 2024-01-01T00:00:00+08:00")
    return value


_ENUMS: dict[str, frozenset[str]] = {
    "kind": frozenset(k.value for k in Kind),
    "channel": frozenset(c.value for c in Channel),
    "urgency": frozenset(u.value for u in Urgency),
    "category": frozenset(c.value for c in Category),
    "hotline": HOTLINES,
    "status": frozenset(s.value for s in ComplaintStatusValue),
}


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z])([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def filter_from_json(text: str | None) -> dict[str, Any] | None:
    """A `ComplaintFilter` sent as a JSON object (REST: `filter={"kind": ["REPORT"], "received_from": …}`),
    keys in snake_case or camelCase, as the mapping `filter_conditions` reads. Enum values are checked
    here (GraphQL's schema checks them there); instants are RFC 3339 with an offset. FilterError otherwise."""
    if text is None or not text.strip():
        return None
    try:
        raw = json.loads(text)
    except ValueError:
        raise FilterError("filter: not valid JSON") from None
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise FilterError("filter: must be a JSON object")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = _snake(str(key))
        if name not in FIELDS:
            raise FilterError(f"filter: unknown field {key!r}; fields are {', '.join(FIELDS)}")
        if value is None:
            continue
        if name in _ENUMS:
            values = value if isinstance(value, list) else [value]
            bad = [v for v in values if not isinstance(v, str) or v not in _ENUMS[name]]
            if bad:
                raise FilterError(f"filter.{name}: unknown value(s) {', '.join(map(str, bad))}")
            out[name] = values
        elif name in ("received_from", "received_to"):
            try:
                out[name] = parse_instant(value)
            except ValueError as exc:
                raise FilterError(f"filter.{name}: {exc}") from None
        elif name == "overdue":
            if not isinstance(value, bool):
                raise FilterError("filter.overdue: true or false")
            out[name] = value
        else:
            if not isinstance(value, str):
                raise FilterError(f"filter.{name}: a string")
            out[name] = value
    return out


async def filter_conditions(flt: Mapping[str, Any] | None, unit_level: UnitLevel) -> ComplaintConditions:
    """The conditions of a `ComplaintFilter` given as a mapping with snake_case keys (enum members or their
    string values in the lists, aware datetimes for `received_from`/`received_to`).

    Every given condition must hold; a list matches any of its values. `unit` narrows to that unit's
    subtree (the caller's jurisdiction is a separate condition the caller adds). FilterError names the
    field that cannot be used.
    """
    out = ComplaintConditions()
    if not flt:
        return out
    c = _COMPLAINTS.c
    conds = out.conditions
    for name in LIST_FIELDS:
        values = flt.get(name)
        if values is not None:
            conds.append(c[name].in_([str(_value(v)) for v in values]))
    bad = [h for h in flt.get("hotline") or () if str(_value(h)) not in HOTLINES]
    if bad:
        raise FilterError(f"filter.hotline: unknown number(s) {', '.join(map(str, bad))}")
    if flt.get("unit") is not None:
        level = await unit_level(flt["unit"])
        if level is None:
            raise FilterError(f"filter.unit: unknown unit code {flt['unit']}")
        # A unit outside the caller's subtree matches nothing visible: the jurisdiction condition stays.
        conds.append(Jurisdiction(flt["unit"], level).condition(Complaint.ancestor_columns()))
    if flt.get("respondent_uscc") is not None:
        if not USCC_PATTERN.match(str(flt["respondent_uscc"])):
            raise FilterError("filter.respondentUscc: not an 18-character USCC")
        conds.append(c.respondent_uscc == flt["respondent_uscc"])
    if flt.get("received_from") is not None:
        conds.append(c.received_at >= _aware(flt["received_from"], "receivedFrom"))
    if flt.get("received_to") is not None:
        conds.append(c.received_at < _aware(flt["received_to"], "receivedTo"))
    if flt.get("status"):
        conds.append(or_(*(status_condition(str(_value(s))) for s in flt["status"])))
    if flt.get("overdue") is not None:
        out.overdue = bool(flt["overdue"])
    return out
