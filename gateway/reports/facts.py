"""KPI facts: what `kpi.obligations.derive` says about each record, stored so that a report is one
aggregate query per table at any `as_of` (kpi.md; the design is in docs/kpi.md).

Three tables (`gateway.reports.models`), each carrying copies of the record's grouping columns (u1..u5,
received_day, received_at) so that a report filters and groups on one table with no join:

- `kpi_record_facts`: one row per record: volumes (kind, channel, hotline, recovered amount) and the
  instants behind reply_rate, callback_rate, mediation_success_rate and case_filing_rate;
- `kpi_obligation_facts`: one row per (record, obligation, step): the due date that applies while
  `as_of` is in [valid_from, valid_to), the fulfilling instant and whether it was on time;
- `kpi_callback_facts`: one row per (record, step): the latest CALLBACK's satisfaction while `as_of` is
  in [valid_from, valid_to).

Facts are derived in the transaction that stores the records (`derive_facts`, called by
`gateway.ingest.store.after_store`), in batches: one query for the records, one for their events, one bulk
delete and one bulk insert per table. They depend on the calendar and the deadline policies; the
fingerprint of the configuration they were derived with is kept in `sync_state`, and when the
configuration changes every record's facts are derived again before they are used.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ARRAY,
    String,
    any_,
    bindparam,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.complaints.models import Complaint, Event
from gateway.core.bulk import bulk_insert_ignoring_duplicates
from gateway.core.state import get_state, set_state
from gateway.reports.models import FACT_MODELS, KpiCallbackFact, KpiObligationFact, KpiRecordFact
from kpi.calendar import CalendarError, WorkCalendar
from kpi.obligations import EventIn, RecordFacts, RecordIn, derive, local_day
from kpi.policies import Policies

log = logging.getLogger(__name__)

CONFIG_KEY = "kpi.facts_config"
RECORDS_PER_DERIVATION = 2000  # records whose facts are derived with one read, one delete, one insert
# Event types that any rule of kpi.md looks at; the others (DISPATCHED, TRANSFERRED, ...) are not loaded.
RELEVANT_EVENTS = (
    "ACCEPTED", "REJECTED", "MEDIATION_SUCCEEDED", "MEDIATION_FAILED", "CLOSED", "EXTENDED",
    "CASE_FILED", "CASE_NOT_FILED", "REPLIED", "CALLBACK",
)


# ------------------------------------------------------------------------------------------ configuration


@dataclass(frozen=True)
class KpiConfig:
    calendar: WorkCalendar
    policies: Policies

    @property
    def fingerprint(self) -> str:
        return f"{self.calendar.fingerprint}:{self.policies.fingerprint}"


_config_cache: dict[tuple[Any, ...], KpiConfig] = {}


def _stamp(path: str | None) -> tuple[str | None, float | None]:
    if not path:
        return None, None
    try:
        return path, os.stat(path).st_mtime
    except OSError:
        return path, None  # from_file then reports the path as unreadable


def kpi_config(holidays_file: str | None = None, policy_file: str | None = None) -> KpiConfig:
    """The calendar and policies of GATEWAY_HOLIDAYS_FILE / GATEWAY_POLICY_FILE (reloaded when a file
    changes). Raises kpi's CalendarError / PolicyError (ValueErrors) for a bad file."""
    key = (*_stamp(holidays_file), *_stamp(policy_file))
    config = _config_cache.get(key)
    if config is None:
        config = KpiConfig(WorkCalendar.from_file(holidays_file), Policies.from_file(policy_file))
        _config_cache.clear()
        _config_cache[key] = config
    return config


def configured() -> KpiConfig:
    """The KPI calendar and policies of GATEWAY_HOLIDAYS_FILE and GATEWAY_POLICY_FILE, from the one cache."""
    from gateway.core.settings import get_settings

    settings = get_settings()
    return kpi_config(settings.holidays_file, settings.policy_file)


# ------------------------------------------------------------------------------------------- derivation


# Column order of the rows `fact_tuples` builds (bulk loads copy them in this order).
GROUPING_COLUMNS = ("complaint_id", "u1", "u2", "u3", "u4", "u5", "received_day", "received_at")
RECORD_FACT_COLUMNS = GROUPING_COLUMNS + (
    "kind", "channel", "hotline", "recovered_cents", "reply_owed_at", "replied_at", "concluded_at",
    "first_callback_at", "mediation_outcome_at", "mediation_succeeded", "decided_at", "case_filed",
)
OBLIGATION_FACT_COLUMNS = GROUPING_COLUMNS + (
    "obligation", "step", "policy", "valid_from", "valid_to", "due_day", "fulfilled_at", "on_time",
)
CALLBACK_FACT_COLUMNS = GROUPING_COLUMNS + ("step", "valid_from", "valid_to", "satisfaction")

FactTuples = tuple[tuple[Any, ...], list[tuple[Any, ...]], list[tuple[Any, ...]]]


def fact_tuples(
    grouping: tuple[Any, ...], kind: str, channel: str, hotline: str | None, recovered_cents: int | None,
    facts: RecordFacts,
) -> FactTuples:
    """One record's facts as rows of the three tables, in the column orders above. `grouping` is
    (complaint_id, u1, u2, u3, u4, u5, received_day, received_at)."""
    record_row = (
        *grouping, kind, channel, hotline, recovered_cents or 0, facts.reply_owed_at, facts.replied_at,
        facts.concluded_at, facts.first_callback_at, facts.mediation_outcome_at, facts.mediation_succeeded,
        facts.decided_at, facts.case_filed,
    )
    obligations = [
        (*grouping, s.obligation, s.step, s.policy, s.valid_from, s.valid_to, s.due_day, s.fulfilled_at, s.on_time)
        for s in facts.obligations
    ]
    callbacks = [(*grouping, c.step, c.valid_from, c.valid_to, c.satisfaction) for c in facts.callbacks]
    return record_row, obligations, callbacks


def _fact_rows(
    rec: Any, facts: RecordFacts
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    grouping = (rec.id, rec.u1, rec.u2, rec.u3, rec.u4, rec.u5, rec.received_day, rec.received_at)
    record_row, obligations, callbacks = fact_tuples(
        grouping, rec.kind, rec.channel, rec.hotline, rec.recovered_amount_cents, facts
    )
    return (
        dict(zip(RECORD_FACT_COLUMNS, record_row, strict=True)),
        [dict(zip(OBLIGATION_FACT_COLUMNS, o, strict=True)) for o in obligations],
        [dict(zip(CALLBACK_FACT_COLUMNS, c, strict=True)) for c in callbacks],
    )


def _id_in(column: Any, ids: Sequence[str], dialect: str) -> Any:
    """`column IN ids`; on PostgreSQL as `= ANY(array)`: one parameter instead of thousands to render."""
    if dialect == "postgresql":
        return column == any_(bindparam("ids", list(ids), type_=ARRAY(String)))
    return column.in_(ids)


async def _derive_batch(
    session: AsyncSession, ids: Sequence[str], config: KpiConfig, models: Sequence[type[Any]] = FACT_MODELS
) -> None:
    """Derive the facts of these stored records again from their events: of the tables of `models`."""
    dialect = session.get_bind().dialect.name

    records = (
        await session.execute(
            select(
                Complaint.id, Complaint.kind, Complaint.channel, Complaint.hotline, Complaint.received_at,
                Complaint.received_day, Complaint.real_name, Complaint.recovered_amount_cents,
                Complaint.u1, Complaint.u2, Complaint.u3, Complaint.u4, Complaint.u5,
            ).where(_id_in(Complaint.id, ids, dialect))
        )
    ).all()
    events: dict[str, list[EventIn]] = {}
    rows = await session.execute(
        select(
            Event.complaint_id, Event.type, Event.at,
            Event.data["working_days"].as_integer(), Event.data["satisfaction"].as_string(),
        )
        .where(_id_in(Event.complaint_id, ids, dialect), Event.type.in_(RELEVANT_EVENTS))
        .order_by(Event.complaint_id, Event.seq)
    )
    for cid, type_, at, working_days, satisfaction in rows:
        data = {"working_days": working_days} if type_ == "EXTENDED" else {"satisfaction": satisfaction}
        events.setdefault(cid, []).append(EventIn(type_, at, data))

    facts = [
        _fact_rows(rec, derive(RecordIn(rec.kind, rec.received_at, rec.real_name, events.get(rec.id, ())),
                               config.calendar, config.policies))
        for rec in records
    ]
    for model in models:
        await session.execute(
            delete(model).where(_id_in(model.complaint_id, ids, dialect)).execution_options(synchronize_session=False)
        )
    await _insert_facts(session, facts, models)


async def rebuild_all(session: AsyncSession, config: KpiConfig, batch: int = RECORDS_PER_DERIVATION) -> int:
    """Bring every stored record's facts to `config` (after the calendar or a policy changed), in the caller's
    transaction; returns the number of records.

    Only obligation facts depend on the calendar and the policies; record and callback facts do not, and stay.
    On PostgreSQL the obligations are worked out in one set-based UPDATE (`_rebuild_obligations`): each
    step's start and fulfilment are fixed by the events, only its policy version, due date and on-time flag
    follow the configuration, and only rows whose values change are written. Records whose steps themselves
    depend on the configuration (a REPORT with EXTENDED events: the cap decides when its due date moves) are
    derived again from their events. Elsewhere (SQLite) every record is derived again, batch by batch. Raises
    kpi's CalendarError or PolicyError (ValueErrors) as `kpi.obligations.derive` would.
    """
    if session.get_bind().dialect.name == "postgresql":
        await _rebuild_obligations(session, config)
        count = int((await session.execute(select(func.count()).select_from(Complaint))).scalar_one())
    else:
        count, after = 0, ""
        while True:
            ids = list(
                (await session.execute(
                    select(Complaint.id).where(Complaint.id > after).order_by(Complaint.id).limit(batch)
                )).scalars()
            )
            if not ids:
                break
            await _derive_batch(session, ids, config)
            count, after = count + len(ids), ids[-1]
    await set_state(session, CONFIG_KEY, config.fingerprint)
    return count


# The new policy version, due date and on-time flag of every obligation step whose start day has a row in
# _kpi_days: the due date is the working day `days` positions after the start day (`add_workdays`).
_NEW_OBLIGATION = """
    FROM _kpi_days d, _kpi_policies p, _kpi_workdays w
    WHERE d.day = (f.valid_from AT TIME ZONE 'Asia/Shanghai')::date
      AND d.day >= p.first_day AND (p.next_day IS NULL OR d.day < p.next_day)
      AND w.k = d.k - 1 + CASE f.obligation WHEN 'C_ACCEPT' THEN p.c_accept WHEN 'C_CONCLUDE' THEN p.c_conclude
                                            WHEN 'R_DECIDE' THEN p.r_decide ELSE p.r_reply END
      AND NOT EXISTS (SELECT 1 FROM _kpi_redo r WHERE r.complaint_id = f.complaint_id)
"""
_ON_TIME = "(f.fulfilled_at IS NOT NULL AND (f.fulfilled_at AT TIME ZONE 'Asia/Shanghai')::date <= w.day)"


async def _rebuild_obligations(session: AsyncSession, config: KpiConfig) -> None:
    # Through the session first: that opens its transaction, which the temporary tables below live in.
    redo = list((await session.execute(
        select(Event.complaint_id).distinct().join(Complaint, Complaint.id == Event.complaint_id)
        .where(Event.type == "EXTENDED", Complaint.kind == "REPORT")
    )).scalars())
    conn = await session.connection()
    raw = (await conn.get_raw_connection()).driver_connection
    assert raw is not None
    first_at, last_at = await raw.fetchrow("SELECT min(valid_from), max(valid_from) FROM kpi_obligation_facts")
    if first_at is not None:
        calendar, versions = config.calendar, config.policies.versions
        first, last = local_day(first_at), local_day(last_at)
        config.policies.in_force(first)  # PolicyError, as derive would raise, when none is in force that early
        days = [(first + timedelta(days=i), calendar.count_through(first + timedelta(days=i)))
                for i in range((last - first).days + 1)]
        longest = max(max(v.days.values()) for v in versions)
        workdays: list[tuple[int, date]] = []
        for k in range(max(days[0][1] - 1, 0), days[-1][1] + longest):
            try:
                workdays.append((k, calendar.workday_at(k)))
            except CalendarError:
                break  # the range ends: a due date beyond it is checked for below
        policies = [
            (v.version, v.effective_from, versions[i + 1].effective_from if i + 1 < len(versions) else None,
             v.days["C_ACCEPT"], v.days["C_CONCLUDE"], v.days["R_DECIDE"], v.days["R_REPLY"])
            for i, v in enumerate(versions)
        ]
        await raw.execute(
            "CREATE TEMP TABLE _kpi_days (day date PRIMARY KEY, k int NOT NULL) ON COMMIT DROP;"
            "CREATE TEMP TABLE _kpi_workdays (k int PRIMARY KEY, day date NOT NULL) ON COMMIT DROP;"
            "CREATE TEMP TABLE _kpi_policies (version text, first_day date, next_day date, c_accept int,"
            " c_conclude int, r_decide int, r_reply int) ON COMMIT DROP;"
            "CREATE TEMP TABLE _kpi_redo (complaint_id text PRIMARY KEY) ON COMMIT DROP"
        )
        await raw.copy_records_to_table("_kpi_days", records=days)
        await raw.copy_records_to_table("_kpi_workdays", records=workdays)
        await raw.copy_records_to_table("_kpi_policies", records=policies)
        await raw.copy_records_to_table("_kpi_redo", records=[(r,) for r in redo])
        await raw.execute("ANALYZE _kpi_days; ANALYZE _kpi_workdays; ANALYZE _kpi_policies; ANALYZE _kpi_redo")
        if len(workdays) < days[-1][1] + longest - max(days[0][1] - 1, 0):
            unmatched = await raw.fetchval(
                "SELECT count(*) FROM kpi_obligation_facts f WHERE NOT EXISTS (SELECT 1" + _NEW_OBLIGATION + ")"
                " AND NOT EXISTS (SELECT 1 FROM _kpi_redo r WHERE r.complaint_id = f.complaint_id)"
            )
            if unmatched:
                raise CalendarError(f"a due date of {unmatched} obligations is beyond the calendar range")
        # Only rows whose values change are written: a new policy version from some date on rewrites the
        # obligations that start after it, and the rest stays as it is.
        await raw.execute(
            "UPDATE kpi_obligation_facts f SET policy = p.version, due_day = w.day, on_time = " + _ON_TIME
            + _NEW_OBLIGATION
            + " AND (f.policy, f.due_day, f.on_time) IS DISTINCT FROM (p.version, w.day, " + _ON_TIME + ")"
        )
    for start in range(0, len(redo), RECORDS_PER_DERIVATION):
        await _derive_batch(session, redo[start:start + RECORDS_PER_DERIVATION], config, (KpiObligationFact,))


async def ensure_current(session: AsyncSession, config: KpiConfig) -> bool:
    """Make the stored facts match `config`; True when they had to be derived again."""
    stored = await get_state(session, CONFIG_KEY)
    if stored == config.fingerprint:
        return False
    count = await rebuild_all(session, config)
    if stored is not None:  # not the first use of this database
        log.warning("KPI calendar or deadline policies changed: facts of %d records derived again", count)
    return True


@dataclass(frozen=True, slots=True)
class NewRecord:
    """A record just inserted, as the store wrote it: its facts need no read back and no delete."""

    id: str
    kind: str
    channel: str
    hotline: str | None
    received_at: datetime
    received_day: date
    real_name: bool
    recovered_amount_cents: int | None
    u1: str | None
    u2: str | None
    u3: str | None
    u4: str | None
    u5: str | None
    events: Sequence[EventIn]  # kpi's events, in the record's order


async def derive_facts(
    session: AsyncSession,
    complaint_ids: Iterable[str],
    config: KpiConfig | None = None,
    new: Sequence[NewRecord] = (),
) -> None:
    """Derive the facts of these (new or changed) records, in the caller's transaction. Records in `new`
    (a subset of the ids) were just inserted: their facts come from memory, with no query."""
    ids = list(dict.fromkeys(complaint_ids))
    if not ids:
        return
    config = config or configured()
    # Stored facts first brought to the configuration; a rebuild leaves these records to us (it works from
    # stored facts, and new ones have none yet).
    await ensure_current(session, config)
    fresh = {r.id: r for r in new}
    if fresh:
        await _insert_facts(session, [
            _fact_rows(rec, derive(RecordIn(rec.kind, rec.received_at, rec.real_name, rec.events),
                                   config.calendar, config.policies))
            for rec in fresh.values()
        ])
    ids = [i for i in ids if i not in fresh]
    for start in range(0, len(ids), RECORDS_PER_DERIVATION):
        await _derive_batch(session, ids[start:start + RECORDS_PER_DERIVATION], config)


async def _insert_facts(
    session: AsyncSession,
    facts: Sequence[tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]],
    models: Sequence[type[Any]] = FACT_MODELS,
) -> None:
    if KpiRecordFact in models:
        await bulk_insert_ignoring_duplicates(session, KpiRecordFact, [r for r, _, _ in facts])
    if KpiObligationFact in models:
        await bulk_insert_ignoring_duplicates(session, KpiObligationFact, [o for _, obs, _ in facts for o in obs])
    if KpiCallbackFact in models:
        await bulk_insert_ignoring_duplicates(session, KpiCallbackFact, [c for _, _, cbs in facts for c in cbs])


async def refresh_fact_units(session: AsyncSession) -> None:
    """Copy u1..u5 from the records into their facts again, after the unit tree changed shape
    (`gateway.ingest.units_file.refresh_record_ancestors`)."""
    for model in FACT_MODELS:
        values = {
            f"u{n}": select(getattr(Complaint, f"u{n}")).where(Complaint.id == model.complaint_id).scalar_subquery()
            for n in range(1, 6)
        }
        await session.execute(update(model).values(**values).execution_options(synchronize_session=False))
