"""A straightforward record-by-record computation of a KPI report, straight from the words of kpi.md.

It shares nothing with the facts design: for each record it drops the events after `as_of`, then applies
the rules to what is left. The property test compares the SQL engine with it on random records.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from kpi.calendar import WorkCalendar
from kpi.metrics import RowCounts, build_row
from kpi.policies import Policies
from kpi.scoring import rank_rows

SH = ZoneInfo("Asia/Shanghai")


def day(instant: datetime) -> date:
    return instant.astimezone(SH).date()


@dataclass
class Ev:
    type: str
    at: datetime
    data: dict[str, Any]


@dataclass
class Rec:
    id: str
    kind: str
    channel: str
    hotline: str | None
    received_at: datetime
    handling_unit: str
    real_name: bool
    recovered_cents: int
    events: list[Ev]  # in the store's order: by `at`, ties as given


def parse_units(csv_text: str) -> dict[str, tuple[str, int, list[str | None]]]:
    """code -> (name, level, ancestors by level 1..5)."""
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    info = {r["code"]: (r["name"], int(r["level"]), r["parent_code"] or None) for r in rows}
    out: dict[str, tuple[str, int, list[str | None]]] = {}
    for code, (name, level, _) in info.items():
        anc: list[str | None] = [None] * 5
        cur: str | None = code
        while cur is not None:
            anc[info[cur][1] - 1] = cur
            cur = info[cur][2]
        out[code] = (name, level, anc)
    return out


def _first(events: Sequence[Ev], types: set[str], after: int = -1) -> int | None:
    return next((i for i in range(after + 1, len(events)) if events[i].type in types), None)


def _state(fulfilled: datetime | None, due: date, as_of: datetime) -> str:
    if fulfilled is not None:
        return "ON_TIME" if day(fulfilled) <= due else "LATE"
    return "OVERDUE" if due < day(as_of) else "PENDING"


def record_counts(rec: Rec, as_of: datetime, cal: WorkCalendar, pol: Policies, used: set[str],
                  dues: list[date], states: list[tuple[str, date, str]] | None = None) -> RowCounts:
    """The record's counts at `as_of`; `states` (when given) collects each obligation's (code, due, state)."""
    c = RowCounts(received=1, recovered_cents=rec.recovered_cents)
    c.by_kind[rec.kind] += 1
    c.by_channel[rec.channel] += 1
    if rec.hotline:
        c.by_hotline[rec.hotline] += 1
    ev = [e for e in rec.events if e.at <= as_of]  # events after as_of do not exist

    def obligation(code: str, start: datetime, fulfilled: datetime | None, extra_days: int = 0) -> None:
        version = pol.in_force(day(start))
        extra = min(extra_days, version.r_decide_extension_cap)
        due = cal.add_workdays(day(start), version.days[code] + extra)
        used.add(version.version)
        dues.append(due)
        state = _state(fulfilled, due, as_of)
        if states is not None:
            states.append((code, due, state))
        if state != "PENDING":
            c.obligations[code][("ON_TIME", "LATE", "OVERDUE").index(state)] += 1

    owed: datetime | None = None
    if rec.kind == "COMPLAINT":
        answer = _first(ev, {"ACCEPTED", "REJECTED"})
        obligation("C_ACCEPT", rec.received_at, ev[answer].at if answer is not None else None)
        accepted = _first(ev, {"ACCEPTED"})
        concluded: datetime | None = None
        if accepted is not None:
            end = _first(ev, {"MEDIATION_SUCCEEDED", "MEDIATION_FAILED", "CLOSED"}, accepted)
            concluded = ev[end].at if end is not None else None
            obligation("C_CONCLUDE", ev[accepted].at, concluded)
            outcome = _first(ev, {"MEDIATION_SUCCEEDED", "MEDIATION_FAILED"}, accepted)
            if outcome is not None:
                c.mediation_outcomes += 1
                c.mediation_succeeded += ev[outcome].type == "MEDIATION_SUCCEEDED"
        if concluded is not None:
            c.concluded += 1
            c.called_back += any(e.type == "CALLBACK" for e in ev)
        rejected = _first(ev, {"REJECTED"})
        points = [t for t in (concluded, ev[rejected].at if rejected is not None else None) if t is not None]
        owed = min(points) if points else None
    elif rec.kind == "REPORT":
        decision = _first(ev, {"CASE_FILED", "CASE_NOT_FILED"})
        before = ev[:decision] if decision is not None else ev
        extension = sum(int(e.data["working_days"]) for e in before if e.type == "EXTENDED")
        obligation("R_DECIDE", rec.received_at, ev[decision].at if decision is not None else None, extension)
        if decision is not None:
            c.decided += 1
            c.case_filed += ev[decision].type == "CASE_FILED"
            if rec.real_name:
                reply = _first(ev, {"REPLIED"}, decision)
                obligation("R_REPLY", ev[decision].at, ev[reply].at if reply is not None else None)
                owed = ev[decision].at
    if owed is not None:
        c.reply_owed += 1
        c.replied += any(e.type == "REPLIED" and e.at >= owed for e in ev)
    callbacks = [e for e in ev if e.type == "CALLBACK"]
    if callbacks and callbacks[-1].data["satisfaction"] != "UNREACHABLE":
        c.callback_reachable += 1
        c.satisfied += callbacks[-1].data["satisfaction"] in ("SATISFIED", "BASICALLY_SATISFIED")
    return c


def reference_report(records: Sequence[Rec], units_csv: str, unit: str, level: int, date_from: date,
                     date_to: date, as_of: datetime, cal: WorkCalendar, pol: Policies,
                     scheme: str = "default") -> dict[str, Any]:
    units = parse_units(units_csv)
    name, own_level, _ = units[unit]
    weights = pol.scheme(scheme)
    rows: dict[str, RowCounts] = {
        code: RowCounts() for code, (_, lvl, anc) in units.items() if lvl == level and anc[own_level - 1] == unit
    }
    total = RowCounts()
    used: set[str] = set()
    dues: list[date] = []
    for rec in records:
        anc = units[rec.handling_unit][2]
        if anc[own_level - 1] != unit or not date_from <= day(rec.received_at) <= date_to:
            continue
        if rec.received_at > as_of:
            continue
        counts = record_counts(rec, as_of, cal, pol, used, dues)
        total.add(counts)
        if anc[level - 1] is not None:
            rows[str(anc[level - 1])].add(counts)
    last = max([date_to, *dues])
    return {
        "unit": {"code": unit, "name": name, "level": own_level},
        "level": level,
        "from": date_from.isoformat(),
        "to": date_to.isoformat(),
        "as_of": as_of.astimezone(SH).isoformat(),
        "scheme": scheme,
        "calendar_complete": not cal.fallback_years(range(date_from.year, last.year + 1)),
        "policy_versions": [v.version for v in pol.versions if v.version in used],
        "total": build_row({"code": unit, "name": name, "level": own_level}, total, weights),
        "rows": rank_rows([
            build_row({"code": code, "name": units[code][0], "level": level}, counts, weights)
            for code, counts in sorted(rows.items())
        ]),
    }
