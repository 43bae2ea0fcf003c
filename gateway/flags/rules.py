"""Complaint flags (interfaces.md, "Complaint flags and incidents"): the rules, and their transactional outbox.

`raise_flags` runs inside the transaction that stores records or events (gateway/ingest/store.py `after_store`),
so a flag, an incident and an early-warning alert commit together with the data that raised them, or not
at all. Each finding has a stable id (UUIDv5 of its parts), written with insert-or-merge, so the same data
arriving twice, in any order, never makes a second flag.

Decisions where the spec is silent (docs/flags.md has the long form):
- Flags are never withdrawn: a record that changes its USCC or month later does not retract a flag.
- A surge's severity only rises. Until its first delivery attempt the outbox payload follows the finding;
  from then on the payload is frozen (every retry sends the same body under the same Idempotency-Key), so a
  surge that reaches 10 after delivery stays MEDIUM at the credit system. The gateway keeps the flag_id,
  records the escalation (`severity` HIGH, `escalated_at`, `updated_at` bumped) and shows it to credit
  callers that pull `creditFlags`, next to the delivered severity.
- `issued_by` is the record's handling unit; for a surge, the deepest unit above all its records' units.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Table, bindparam, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.complaints.models import Complaint, Event
from gateway.core.bulk import dialect_insert, insert_ignoring_duplicates
from gateway.core.db import chunked
from gateway.core.feed import Alert, publish_alerts
from gateway.core.time import SHANGHAI, as_utc, format_instant
from gateway.flags.metrics import count_on_commit
from gateway.flags.models import CREDIT, EMERGENCY, PENDING, FlagRow, OutboxItem, SurgeCount

SURGE, CASE_FILED, CRITICAL_SAFETY = "COMPLAINT_SURGE", "CASE_FILED_FROM_REPORT", "CRITICAL_SAFETY"
SURGE_MEDIUM, SURGE_HIGH = 5, 10  # records of one enterprise in one month
SURGE_KINDS = ("COMPLAINT", "REPORT")
SAFETY_CATEGORIES = frozenset({"FOOD", "DRUG", "MEDICAL_DEVICE", "SPECIAL_EQUIPMENT"})
SEVERITY_RANK = {"LOW": 0, "MEDIUM": 1, "HIGH": 2}

# Fixed forever: changing it would change every flag_id and the credit system would see new flags.
FLAG_NAMESPACE = uuid.UUID("6f1b2c0e-3d2a-5b8e-9c41-12315f1a6e00")

_RECORD_COLUMNS = (
    Complaint.id, Complaint.kind, Complaint.urgency, Complaint.category, Complaint.received_at,
    Complaint.received_day, Complaint.handling_unit, Complaint.u1, Complaint.u2, Complaint.u3, Complaint.u4,
    Complaint.u5, Complaint.respondent_uscc, Complaint.summary,
)


def flag_id(reason: str, uscc: str, part: str) -> str:
    """The stable id of a finding: reason, USCC and the month (YYYY-MM) or the record id."""
    return str(uuid.uuid5(FLAG_NAMESPACE, f"{reason}|{uscc}|{part}"))


def month_of(day: date) -> str:
    """`YYYY-MM` of a calendar day."""
    return f"{day.year:04d}-{day.month:02d}"


def month_window(month: str) -> tuple[datetime, datetime]:
    """[first instant, first instant of the next month) in Asia/Shanghai."""
    year, mon = int(month[:4]), int(month[5:7])
    start = datetime(year, mon, 1, tzinfo=SHANGHAI)
    end = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=SHANGHAI)
    return start, end


def surge_severity(count: int) -> str | None:
    """The severity of a surge of `count` records of one enterprise in one month, or None below the threshold."""
    if count >= SURGE_HIGH:
        return "HIGH"
    return "MEDIUM" if count >= SURGE_MEDIUM else None


@dataclass(slots=True)
class Finding:
    """A flag as the rules see it now."""

    reason: str
    uscc: str
    part: str  # month or record id
    severity: str
    complaint_ids: list[str]
    window_start: datetime
    window_end: datetime
    units: list[tuple[str | None, ...]] = field(default_factory=list)  # ancestor codes of each record's unit

    @property
    def flag_id(self) -> str:
        return flag_id(self.reason, self.uscc, self.part)


def issuing_unit(units: list[tuple[str | None, ...]]) -> tuple[str | None, ...]:
    """The deepest unit above (or equal to) all these units, as its ancestors by level."""
    common: list[str | None] = []
    for level in range(5):
        codes = {u[level] for u in units}
        if len(codes) != 1 or None in codes:
            break
        common.append(next(iter(codes)))
    return tuple(common) + (None,) * (5 - len(common))


def _deepest(ancestors: tuple[str | None, ...]) -> str | None:
    return next((code for code in reversed(ancestors) if code is not None), None)


def flag_payload(row: dict[str, Any]) -> dict[str, Any]:
    """The ComplaintFlag body of external-systems.md."""
    return {
        "flag_id": row["flag_id"],
        "uscc": row["uscc"],
        "reason": row["reason"],
        "severity": row["severity"],
        "complaint_ids": list(row["complaint_ids"]),
        "window_start": format_instant(row["window_start"]),
        "window_end": format_instant(row["window_end"]),
        "issued_by": row["issued_by"],
        "issued_at": format_instant(row["issued_at"]),
    }


def incident_payload(rec: Any, now: datetime) -> dict[str, Any]:
    """The incident body of external-systems.md for one CRITICAL record."""
    return {
        "source": "12315",
        "complaint_ids": [rec.id],
        "category": rec.category,
        "urgency": rec.urgency,
        "unit_code": rec.handling_unit,
        "summary": rec.summary,
        "reported_at": format_instant(now),
    }



# ------------------------------------------------------------------------------------------------ the hook


async def raise_flags(session: AsyncSession, changed_ids: list[str]) -> None:
    """Evaluate every rule for records just stored or changed, in the caller's transaction: flags and their
    outbox items, incidents for CRITICAL records, and early-warning alerts."""
    if not changed_ids:
        return
    records: list[Any] = []
    for chunk in chunked(list(dict.fromkeys(changed_ids))):
        records.extend((await session.execute(select(*_RECORD_COLUMNS).where(Complaint.id.in_(chunk)))).all())
    await raise_flags_for(session, records)


async def raise_flags_for(
    session: AsyncSession, records: Sequence[Any], case_filed: dict[str, datetime | None] | None = None,
    *, inserted: bool = False,
) -> None:
    """`raise_flags` for records the caller holds: each with the attributes of `_RECORD_COLUMNS` as stored
    (`summary` needed for CRITICAL ones only). `case_filed`: the first CASE_FILED instant of each REPORT with
    a USCC, when the caller knows its events (a new record); None reads them from the store. `inserted`: the
    records were inserted by this transaction just now, and only now (the surge counts add them)."""
    from gateway.flags.alerts import evaluate_alerts  # alerts imports this module's helpers

    if not records:
        return
    now = datetime.now(UTC)
    filed = await _case_filed(session, records) if case_filed is None else _case_filed_known(records, case_filed)
    findings = [*_critical_safety(records), *filed, *await _surges(session, records, inserted)]
    await _store_findings(session, findings, now)
    await _queue_incidents(session, [r for r in records if r.urgency == "CRITICAL"], now)
    await evaluate_alerts(session, records, now)


def _units_of(rec: Any) -> tuple[str | None, ...]:
    return (rec.u1, rec.u2, rec.u3, rec.u4, rec.u5)


def _critical_safety(records: Sequence[Any]) -> list[Finding]:
    return [
        Finding(CRITICAL_SAFETY, r.respondent_uscc, r.id, "HIGH", [r.id], r.received_at, r.received_at, [_units_of(r)])
        for r in records
        if r.urgency == "CRITICAL" and r.category in SAFETY_CATEGORIES and r.respondent_uscc
    ]


async def _case_filed(session: AsyncSession, records: Sequence[Any]) -> list[Finding]:
    reports = {r.id: r for r in records if r.kind == "REPORT" and r.respondent_uscc}
    if not reports:
        return []
    filed: dict[str, datetime] = {}
    for chunk in chunked(list(reports)):
        rows = await session.execute(
            select(Event.complaint_id, func.min(Event.at))
            .where(Event.complaint_id.in_(chunk), Event.type == "CASE_FILED")
            .group_by(Event.complaint_id)
        )
        filed.update({cid: at for cid, at in rows.all()})
    out = []
    for cid, at in filed.items():
        r = reports[cid]
        at = as_utc(at)  # func.min loses the column type on SQLite
        out.append(Finding(CASE_FILED, r.respondent_uscc, r.id, "HIGH", [r.id], r.received_at, at, [_units_of(r)]))
    return out


def _case_filed_known(records: Sequence[Any], case_filed: dict[str, datetime | None]) -> list[Finding]:
    out = []
    for r in records:
        at = case_filed.get(r.id)
        if at is not None and r.kind == "REPORT" and r.respondent_uscc:
            out.append(Finding(CASE_FILED, r.respondent_uscc, r.id, "HIGH", [r.id], r.received_at, at, [_units_of(r)]))
    return out


def _lock_key(uscc: str, month: str) -> int:
    """The advisory lock guarding the count of (USCC, month): one of SURGE_LOCKS, so that a batch touching
    thousands of keys takes a bounded number of locks (PostgreSQL's lock table is small)."""
    digest = hashlib.sha256(f"surge|{uscc}|{month}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % SURGE_LOCKS


SURGE_LOCKS = 1024
_LOCK_CLASS = 12315  # the first half of the two-part advisory lock key: the surge counts' own space


async def _surges(session: AsyncSession, records: Sequence[Any], inserted: bool) -> list[Finding]:
    """Surge findings for the (USCC, month) keys of `records`. `inserted`: the records were just inserted
    (each adds one to its key's stored count, and only keys whose count reaches SURGE_MEDIUM are counted
    from the records); otherwise every key is counted from the records, as after a change of fields."""
    batch = Counter(
        (r.respondent_uscc, month_of(r.received_day))
        for r in records
        if r.kind in SURGE_KINDS and r.respondent_uscc
    )
    if not batch:
        return []
    if session.get_bind().dialect.name == "postgresql":
        # Two transactions each adding a 5th record would each count 4 under READ COMMITTED and neither
        # would flag; locks over (USCC, month), taken in one sorted order, serialise those counts.
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:cls, k) FROM unnest(CAST(:keys AS int[])) AS k"),
            {"cls": _LOCK_CLASS, "keys": sorted({_lock_key(u, m) for u, m in batch})},
        )
    stored = await _add_to_counts(session, batch) if inserted else {}
    keys = sorted(k for k, n in stored.items() if n >= SURGE_MEDIUM) if inserted else sorted(batch)
    if not keys:
        return []
    counts, surging = await _count_records(session, keys)
    # The stored count is exact again wherever the records were just counted (it may have run ahead of
    # them: a record that moved to another enterprise or month, a record two writers inserted at once).
    exact = {k: counts.get(k, 0) for k in keys}
    await _set_counts(session, {k: n for k, n in exact.items() if n != stored.get(k)})
    out = []
    for (uscc, month), matching in surging.items():
        severity = surge_severity(len(matching))
        if severity:
            start, end = month_window(month)
            ids = sorted(r.id for r in matching)
            out.append(Finding(SURGE, uscc, month, severity, ids, start, end, [_units_of(r) for r in matching]))
    return out


_SURGE_COUNTS: Table = SurgeCount.__table__  # type: ignore[assignment]
_Key = tuple[str, str]  # (USCC, month)


async def _add_to_counts(session: AsyncSession, batch: Counter[_Key]) -> dict[_Key, int]:
    """Add the batch's records to the stored count of each key (in key order); returns the counts now of
    the keys that reach SURGE_MEDIUM (the others need nothing more)."""
    return await _write_counts(session, dict(batch), add=True, at_least=SURGE_MEDIUM)


async def _set_counts(session: AsyncSession, counts: dict[_Key, int]) -> None:
    """Store these exact counts (in key order)."""
    await _write_counts(session, counts, add=False, at_least=0)


_UPSERT_COUNTS_PG = (
    "WITH written AS (INSERT INTO surge_counts (uscc, month, records)"
    " SELECT * FROM unnest(CAST(:usccs AS text[]), CAST(:months AS text[]), CAST(:counts AS int[]))"
    " ON CONFLICT (uscc, month) DO UPDATE SET records = {value} RETURNING uscc, month, records)"
    " SELECT uscc, month, records FROM written WHERE records >= :at_least"
)


async def _write_counts(
    session: AsyncSession, counts: dict[_Key, int], add: bool, at_least: int
) -> dict[_Key, int]:
    """Add (`add`) or set the counts; returns those written that are `at_least`."""
    keys = sorted(counts)
    if not keys:
        return {}
    if session.get_bind().dialect.name == "postgresql":  # one statement of three arrays, whatever the keys
        value = "surge_counts.records + EXCLUDED.records" if add else "EXCLUDED.records"
        rows = await session.execute(text(_UPSERT_COUNTS_PG.format(value=value)), {
            "usccs": [u for u, _ in keys], "months": [m for _, m in keys], "counts": [counts[k] for k in keys],
            "at_least": at_least,
        })
        return {(u, m): n for u, m, n in rows.all()}
    out: dict[_Key, int] = {}
    for chunk in chunked(keys, 2000):
        stmt = dialect_insert("sqlite", _SURGE_COUNTS).values(
            [{"uscc": u, "month": m, "records": counts[(u, m)]} for u, m in chunk]
        )
        records = _SURGE_COUNTS.c.records + stmt.excluded.records if add else stmt.excluded.records
        stmt = stmt.on_conflict_do_update(index_elements=["uscc", "month"], set_={"records": records})
        rows = await session.execute(stmt.returning(*_SURGE_COUNTS.c))
        out.update({(u, m): n for u, m, n in rows.all() if n >= at_least})
    return out


async def _count_records(
    session: AsyncSession, keys: list[_Key]
) -> tuple[dict[_Key, int], dict[_Key, list[Any]]]:
    """(the number of records of each key that has any, the records (id, u1..u5) of each key that has
    SURGE_MEDIUM or more)."""
    if session.get_bind().dialect.name != "postgresql":
        return await _surging(session, keys)
    counts: dict[_Key, int] = {}
    surging: dict[_Key, list[Any]] = defaultdict(list)
    for row in await _surging_pg(session, keys):
        key = (row.respondent_uscc, row.month)
        counts[key] = row.n
        if row.n >= SURGE_MEDIUM:
            surging[key].append(row)
    return counts, surging


async def _surging_pg(session: AsyncSession, keys: list[_Key]) -> list[Any]:
    """The records of every (USCC, month) of `keys` that has SURGE_MEDIUM or more, with `n` their number, and
    one row with `n` of each other key that has records; in one statement: each key an index range scan on
    (respondent_uscc, received_day), LATERAL as `gateway.core.db.each_by_key` does and for its reason, counted
    where the rows are."""
    windows = [month_window(month) for _, month in keys]
    rows = await session.execute(
        text(
            "SELECT respondent_uscc, month, id, u1, u2, u3, u4, u5, n FROM ("
            " SELECT c.respondent_uscc, k.month, c.id, c.u1, c.u2, c.u3, c.u4, c.u5,"
            " count(*) OVER (PARTITION BY k.uscc, k.month) AS n,"
            " row_number() OVER (PARTITION BY k.uscc, k.month) AS i"
            " FROM unnest(CAST(:usccs AS text[]), CAST(:months AS text[]), CAST(:firsts AS date[]),"
            " CAST(:ends AS date[])) AS k(uscc, month, first_day, end_day)"
            " CROSS JOIN LATERAL (SELECT id, respondent_uscc, u1, u2, u3, u4, u5 FROM complaints"
            " WHERE respondent_uscc = k.uscc AND received_day >= k.first_day AND received_day < k.end_day"
            " AND kind = ANY(CAST(:kinds AS text[])) OFFSET 0) c"
            ") counted WHERE n >= :medium OR i = 1"
        ),
        {
            "usccs": [u for u, _ in keys], "months": [m for _, m in keys],
            "firsts": [w[0].date() for w in windows], "ends": [w[1].date() for w in windows],
            "kinds": list(SURGE_KINDS), "medium": SURGE_MEDIUM,
        },
    )
    return list(rows.all())


async def _surging(session: AsyncSession, keys: list[_Key]) -> tuple[dict[_Key, int], dict[_Key, list[Any]]]:
    """`_count_records` in portable SQL: per month, the keys' USCCs on the (respondent_uscc, received_day)
    index, counted first; only the keys that reach a surge need their records."""
    counts: dict[_Key, int] = {}
    surging: dict[_Key, list[Any]] = defaultdict(list)
    by_month: dict[str, list[str]] = defaultdict(list)
    for uscc, month in sorted(keys):
        by_month[month].append(uscc)
    for month, usccs in by_month.items():
        start, end = month_window(month)
        within = (
            Complaint.received_day >= start.date(), Complaint.received_day < end.date(),
            Complaint.kind.in_(SURGE_KINDS),
        )
        for chunk in chunked(usccs):
            counted = await session.execute(
                select(Complaint.respondent_uscc, func.count())
                .where(Complaint.respondent_uscc.in_(chunk), *within)
                .group_by(Complaint.respondent_uscc)
            )
            counts.update({(uscc, month): n for uscc, n in counted.all()})
        for chunk in chunked([u for u in usccs if counts.get((u, month), 0) >= SURGE_MEDIUM]):
            rows = await session.execute(
                select(Complaint.id, Complaint.respondent_uscc, *_unit_columns())
                .where(Complaint.respondent_uscc.in_(chunk), *within)
            )
            for row in rows.all():
                surging[(row.respondent_uscc, month)].append(row)
    return counts, surging


def _unit_columns() -> tuple[Any, ...]:
    return (Complaint.u1, Complaint.u2, Complaint.u3, Complaint.u4, Complaint.u5)


async def _store_findings(session: AsyncSession, findings: list[Finding], now: datetime) -> None:
    by_id: dict[str, Finding] = {}
    for f in findings:  # one batch can find a thing twice (two versions of a record): keep the stronger
        prev = by_id.get(f.flag_id)
        if prev is None or SEVERITY_RANK[f.severity] >= SEVERITY_RANK[prev.severity]:
            by_id[f.flag_id] = f
    if not by_id:
        return
    flags: Table = FlagRow.__table__  # type: ignore[assignment]
    stored: dict[str, Any] = {}
    for chunk in chunked(list(by_id)):
        found = await session.execute(select(*flags.columns).where(flags.c.flag_id.in_(chunk)))
        stored.update({f.flag_id: f for f in found.all()})

    new_rows: list[dict[str, Any]] = []
    changed: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)  # by the columns that change
    payloads: list[dict[str, Any]] = []
    for fid, f in by_id.items():
        ancestors = issuing_unit(f.units)
        issued_by = _deepest(ancestors) or f.units[0][0] or ""
        old = stored.get(fid)
        if old is None:
            new_rows.append(_flag_row(fid, f, issued_by, ancestors, now))
            continue
        severity = max(old.severity, f.severity, key=SEVERITY_RANK.__getitem__)
        ids = sorted(set(old.complaint_ids) | set(f.complaint_ids))
        changes: dict[str, Any] = {}
        if severity != old.severity:
            changes["severity"], changes["escalated_at"] = severity, now
        if ids != sorted(old.complaint_ids):
            changes["complaint_ids"] = ids
            if f.reason == SURGE:  # the surge's records as a whole decide the issuing unit
                if _deepest(ancestors) and _deepest(ancestors) != old.issued_by:
                    changes["issued_by"] = _deepest(ancestors)
                    changes.update({f"i{n + 1}": ancestors[n] for n in range(5)})
        if f.window_end != old.window_end and f.reason == CASE_FILED:  # an earlier CASE_FILED arrived late
            changes["window_end"] = min(f.window_end, old.window_end)
        if not changes:
            continue
        changes["updated_at"] = now
        changed[tuple(sorted(changes))].append({"_fid": fid, **changes})
        # The payload follows the finding until the first delivery attempt freezes it.
        payloads.append({"_key": fid, "_payload": flag_payload(old._asdict() | changes)})
    # Every change in a few statements (one per set of changed columns), not two round trips per flag.
    for columns, rows in changed.items():
        await session.execute(
            update(flags).where(flags.c.flag_id == bindparam("_fid")).values({c: bindparam(c) for c in columns}),
            rows,
        )
    if payloads:
        outbox: Table = OutboxItem.__table__  # type: ignore[assignment]
        await session.execute(
            update(outbox)
            .where(outbox.c.system == CREDIT, outbox.c.key == bindparam("_key"), outbox.c.first_attempt_at.is_(None))
            .values(payload=bindparam("_payload")),
            payloads,
        )
    if new_rows:
        await session.execute(insert_ignoring_duplicates(session, FlagRow), new_rows)
        await session.execute(
            insert_ignoring_duplicates(session, OutboxItem),
            [_outbox_row(CREDIT, r["flag_id"], flag_payload(r), now) for r in new_rows],
        )
        for reason in {r["reason"] for r in new_rows}:
            count_on_commit(session, reason, sum(1 for r in new_rows if r["reason"] == reason))
        await publish_alerts(session, [
            Alert("FLAG_RAISED", r["issued_by"], r["complaint_ids"],
                  {"flagId": r["flag_id"], "reason": r["reason"], "severity": r["severity"], "uscc": r["uscc"]})
            for r in new_rows if r["issued_by"]
        ])


def _flag_row(fid: str, f: Finding, issued_by: str, anc: tuple[str | None, ...], now: datetime) -> dict[str, Any]:
    return {
        "flag_id": fid,
        "reason": f.reason,
        "uscc": f.uscc,
        "severity": f.severity,
        "complaint_ids": sorted(f.complaint_ids),
        "window_start": f.window_start,
        "window_end": f.window_end,
        "issued_by": issued_by,
        **{f"i{n + 1}": anc[n] for n in range(5)},
        "issued_at": now,
        "updated_at": now,
        "escalated_at": None,
    }


def _outbox_row(system: str, key: str, payload: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "system": system,
        "key": key,
        "payload": payload,
        "state": PENDING,
        "attempts": 0,
        "created_at": now,
        "next_attempt_at": now,
    }


async def _queue_incidents(session: AsyncSession, critical: Sequence[Any], now: datetime) -> None:
    """One incident per CRITICAL record, keyed by the record id: queued once, whatever arrives again; each
    one newly queued is announced on the live feed (CRITICAL_ESCALATION) under its handling unit."""
    if not critical:
        return
    queued = set((await session.execute(
        insert_ignoring_duplicates(session, OutboxItem).returning(OutboxItem.__table__.c.key),
        [_outbox_row(EMERGENCY, r.id, incident_payload(r, now), now) for r in critical],
    )).scalars())
    await publish_alerts(session, [a for r in critical if r.id in queued for a in incident_alerts([r], "record")])


def incident_alerts(records: Sequence[Any], source: str, incident_id: str | None = None) -> list[Alert]:
    """The live feed's CRITICAL_ESCALATION for an incident about `records`: one alert per handling unit, with
    that unit's records only, so each subtree hears of its own. `source`: "record" (a CRITICAL record,
    queued for the emergency system) or "escalation" (an operator's escalateIncident)."""
    by_unit: dict[str, list[Any]] = defaultdict(list)
    for r in records:
        by_unit[r.handling_unit].append(r)
    return [
        Alert("CRITICAL_ESCALATION", unit, [r.id for r in rs], {
            "source": source, "incidentId": incident_id,
            "categories": sorted({r.category for r in rs}),
            "urgency": max((r.urgency for r in rs), key=("NORMAL", "URGENT", "CRITICAL").index),
        })
        for unit, rs in sorted(by_unit.items())
    ]
