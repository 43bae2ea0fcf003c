"""KPI facts: what `kpi.obligations.derive` says about each record, stored so that a report needs no record
in Python at any `as_of` (kpi.md; the design is in docs/kpi.md; the tables are in `gateway.reports.models`).

Facts are derived in the transaction that stores the records (`derive_facts`, called by
`gateway.ingest.store.after_store`), in batches: one query for the records, one for their events, one bulk
delete and one bulk insert per table, and the rollups (`gateway.reports.rollups`) follow: the old facts are
retracted from them before the delete, the new ones added after the insert. Facts depend on the calendar
and the deadline policies; the fingerprint of the configuration they were derived with is kept in
`sync_state`, and when the configuration changes every record's facts are derived again before they are used.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.schema import CreateIndex

from gateway.complaints.models import Complaint, Event
from gateway.core.bulk import bulk_insert_ignoring_duplicates
from gateway.core.state import get_state, set_state
from gateway.reports import rollups
from gateway.reports.models import (
    FACT_MODELS,
    RECORD_FACT_MODELS,
    ROLLUP_TABLES,
    KpiCallbackFact,
    KpiObligationFact,
    KpiRecordFact,
)
from gateway.reports.rollups import id_in
from kpi.calendar import WorkCalendar
from kpi.obligations import EventIn, RecordFacts, RecordIn, derive, final_view
from kpi.policies import OBLIGATIONS, Policies

log = logging.getLogger(__name__)

CONFIG_KEY = "kpi.facts_config"
# Raised whenever what is derived per record changes (2: final views and rollups), so that facts stored by an
# older version are derived again on first use.
FACTS_LAYOUT = 2
RECORDS_PER_DERIVATION = 2000  # records whose facts are derived with one read, one delete, one insert
REBUILD_BATCH = 5000  # records read, derived and copied together by `rebuild_all` on PostgreSQL
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
        """Changes with the calendar, the policies and the layout of the facts: stored facts whose fingerprint
        differs are derived again before use."""
        return f"facts-{FACTS_LAYOUT}:{self.calendar.fingerprint}:{self.policies.fingerprint}"


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


def final_columns(received_at: datetime, facts: RecordFacts) -> dict[str, Any]:
    """The final-view columns of a record's `kpi_record_facts` row (see KpiRecordFact)."""
    view = final_view(facts, received_at)
    return {
        "last_change_at": view.last_change_at,
        "open_due_day": min(view.open_dues.values()) if view.open_dues else None,
        "last_due_day": view.last_due_day,
        "final_policies": policies_key(view.policies),
        "final_satisfaction": view.satisfaction,
        **{f"final_{code.lower()}": view.states.get(code) for code in OBLIGATIONS},
    }


@lru_cache(maxsize=256)
def policies_key(versions: tuple[str, ...]) -> str:
    """A set of policy version names (sorted) as one key: a JSON list (names may hold any character)."""
    return json.dumps(list(versions), ensure_ascii=False, separators=(",", ":"))


# (kpi_record_facts row, kpi_obligation_facts rows, kpi_callback_facts rows) of one record
FactRows = tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]

# The columns of the rows `fact_tuples` builds, in their order (bulk loads copy them in this order).
GROUPING_COLUMNS = ("complaint_id", "u1", "u2", "u3", "u4", "u5", "received_day", "received_at")
FINAL_COLUMNS = (
    "last_change_at", "open_due_day", "last_due_day", "final_policies", "final_satisfaction",
    *(f"final_{code.lower()}" for code in OBLIGATIONS),
)
RECORD_FACT_COLUMNS = GROUPING_COLUMNS + (
    "kind", "channel", "hotline", "recovered_cents", "reply_owed_at", "replied_at", "concluded_at",
    "first_callback_at", "mediation_outcome_at", "mediation_succeeded", "decided_at", "case_filed", *FINAL_COLUMNS,
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
    final = final_columns(grouping[7], facts)
    record_row = (
        *grouping, kind, channel, hotline, recovered_cents or 0, facts.reply_owed_at, facts.replied_at,
        facts.concluded_at, facts.first_callback_at, facts.mediation_outcome_at, facts.mediation_succeeded,
        facts.decided_at, facts.case_filed, *(final[c] for c in FINAL_COLUMNS),
    )
    obligations = [
        (*grouping, s.obligation, s.step, s.policy, s.valid_from, s.valid_to, s.due_day, s.fulfilled_at, s.on_time)
        for s in facts.obligations
    ]
    callbacks = [(*grouping, c.step, c.valid_from, c.valid_to, c.satisfaction) for c in facts.callbacks]
    return record_row, obligations, callbacks


def fact_rows(rec: Any, facts: RecordFacts) -> FactRows:
    """The rows of the three fact tables for one record (`rec`: a NewRecord or a row with its columns) and its
    derived facts: (kpi_record_facts row, kpi_obligation_facts rows, kpi_callback_facts rows)."""
    grouping = (rec.id, rec.u1, rec.u2, rec.u3, rec.u4, rec.u5, rec.received_day, rec.received_at)
    record_row, obligations, callbacks = fact_tuples(
        grouping, rec.kind, rec.channel, rec.hotline, rec.recovered_amount_cents, facts
    )
    return (
        dict(zip(RECORD_FACT_COLUMNS, record_row, strict=True)),
        [dict(zip(OBLIGATION_FACT_COLUMNS, o, strict=True)) for o in obligations],
        [dict(zip(CALLBACK_FACT_COLUMNS, c, strict=True)) for c in callbacks],
    )


async def _derive_batch(session: AsyncSession, ids: Sequence[str], config: KpiConfig, replace: bool = True) -> None:
    """Derive and store the facts of these stored records; `replace`: they may have facts already (which are
    taken out of the rollups and deleted first), else they have none (a rebuild after everything was emptied)."""
    dialect = session.get_bind().dialect.name

    records = (
        await session.execute(
            select(
                Complaint.id, Complaint.kind, Complaint.channel, Complaint.hotline, Complaint.received_at,
                Complaint.received_day, Complaint.real_name, Complaint.recovered_amount_cents,
                Complaint.u1, Complaint.u2, Complaint.u3, Complaint.u4, Complaint.u5,
            ).where(id_in(Complaint.id, ids, dialect))
        )
    ).all()
    events: dict[str, list[EventIn]] = {}
    rows = await session.execute(
        select(
            Event.complaint_id, Event.type, Event.at,
            Event.data["working_days"].as_integer(), Event.data["satisfaction"].as_string(),
        )
        .where(id_in(Event.complaint_id, ids, dialect), Event.type.in_(RELEVANT_EVENTS))
        .order_by(Event.complaint_id, Event.seq)
    )
    for cid, type_, at, working_days, satisfaction in rows:
        data = {"working_days": working_days} if type_ == "EXTENDED" else {"satisfaction": satisfaction}
        events.setdefault(cid, []).append(EventIn(type_, at, data))

    facts = [
        fact_rows(rec, derive(RecordIn(rec.kind, rec.received_at, rec.real_name, events.get(rec.id, ())),
                               config.calendar, config.policies))
        for rec in records
    ]
    if replace:
        await _replace_facts(session, ids, facts)
    else:
        await _insert_facts(session, facts)


async def _replace_facts(session: AsyncSession, ids: Sequence[str], facts: Sequence[FactRows]) -> None:
    """Store `facts` as the facts of the records `ids`, whatever they had, and keep the rollups in step."""
    dialect = session.get_bind().dialect.name
    await rollups.retract(session, ids)
    # A thousand ids at a time: with many more in one `= ANY(ids)`, PostgreSQL's estimate may prefer
    # scanning the whole facts table to looking each id up.
    for start in range(0, len(ids), 1000):
        for model in RECORD_FACT_MODELS:
            condition = id_in(model.complaint_id, ids[start:start + 1000], dialect)
            await session.execute(delete(model).where(condition).execution_options(synchronize_session=False))
    await _insert_facts(session, facts)
    await rollups.add(session, ids)


async def rebuild_all(session: AsyncSession, config: KpiConfig, batch: int | None = None) -> int:
    """Derive every record's facts again (after the calendar or a policy changed), and the rollups from them,
    in the caller's transaction; returns the count of records.

    Streamed: records are read in id order, `batch` at a time with their events, derived, and their facts
    written by binary COPY (PostgreSQL) or multi-row INSERTs, so memory stays flat whatever the store holds.
    On PostgreSQL the facts tables are emptied with TRUNCATE (no dead rows left behind; it holds an exclusive
    lock on them until the transaction ends, so reports wait for the rebuild rather than read half of it)
    and their secondary indexes are built once at the end instead of row by row.
    """
    if session.get_bind().dialect.name == "postgresql":
        return await _rebuild_all_pg(session, config, batch or REBUILD_BATCH)
    batch = batch or RECORDS_PER_DERIVATION
    for model in FACT_MODELS:
        await session.execute(delete(model))
    count, after = 0, ""
    while True:
        ids = list(
            (await session.execute(
                select(Complaint.id).where(Complaint.id > after).order_by(Complaint.id).limit(batch)
            )).scalars()
        )
        if not ids:
            break
        await _derive_batch(session, ids, config, replace=False)
        count, after = count + len(ids), ids[-1]
    await rollups.rebuild(session)
    await set_state(session, CONFIG_KEY, config.fingerprint)
    return count


_RECORDS_AFTER = (
    "SELECT id, kind, channel, hotline, received_at, received_day, real_name, recovered_amount_cents,"
    " u1, u2, u3, u4, u5 FROM complaints WHERE id > $1 ORDER BY id LIMIT $2"
)
_EVENTS_BETWEEN = (
    "SELECT complaint_id, type, at, CAST(data ->> 'working_days' AS integer), data ->> 'satisfaction'"
    " FROM events WHERE complaint_id >= $1 AND complaint_id <= $2 AND type = ANY($3::text[])"
    " ORDER BY complaint_id, seq"
)


async def _rebuild_all_pg(session: AsyncSession, config: KpiConfig, batch: int) -> int:
    conn = await session.connection()
    raw = (await conn.get_raw_connection()).driver_connection
    assert raw is not None
    tables: list[Table] = [model.__table__ for model in RECORD_FACT_MODELS]  # type: ignore[misc]
    indexes = [index for table in tables for index in table.indexes]
    await raw.execute(f"TRUNCATE {', '.join(t.name for t in (*tables, *ROLLUP_TABLES))}")
    for index in indexes:
        await raw.execute(f"DROP INDEX IF EXISTS {index.name}")
    columns = {"kpi_record_facts": list(RECORD_FACT_COLUMNS), "kpi_obligation_facts": list(OBLIGATION_FACT_COLUMNS),
               "kpi_callback_facts": list(CALLBACK_FACT_COLUMNS)}
    count, after = 0, ""
    relevant = list(RELEVANT_EVENTS)
    while True:
        records = await raw.fetch(_RECORDS_AFTER, after, batch)
        if not records:
            break
        events: dict[str, list[EventIn]] = {}
        for cid, type_, at, working_days, satisfaction in await raw.fetch(
            _EVENTS_BETWEEN, records[0][0], records[-1][0], relevant
        ):
            data = {"working_days": working_days} if type_ == "EXTENDED" else {"satisfaction": satisfaction}
            events.setdefault(cid, []).append(EventIn(type_, at, data))
        rows: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
        for rid, kind, channel, hotline, received_at, day, real_name, cents, u1, u2, u3, u4, u5 in records:
            facts = derive(RecordIn(kind, received_at, real_name, events.get(rid, ())), config.calendar,
                           config.policies)
            record_row, obligations, callbacks = fact_tuples(
                (rid, u1, u2, u3, u4, u5, day, received_at), kind, channel, hotline, cents, facts
            )
            rows[0].append(record_row)
            rows[1].extend(obligations)
            rows[2].extend(callbacks)
        for name, table_rows in zip(columns, rows, strict=True):
            if table_rows:
                await raw.copy_records_to_table(name, records=table_rows, columns=columns[name])
        count, after = count + len(records), records[-1][0]
    for index in indexes:
        await raw.execute(str(CreateIndex(index).compile(dialect=conn.dialect)))
    await rollups.rebuild(session)
    await set_state(session, CONFIG_KEY, config.fingerprint)
    return count


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
    if await ensure_current(session, config):
        return  # every record, these included, was just derived
    fresh = {r.id: r for r in new}
    if fresh:
        fresh_ids = list(fresh)
        # Normally there is nothing to take out. But a writer that inserted the same new record concurrently
        # and committed first left facts, already in the rollups (this transaction waited for its record
        # row): they are retracted and replaced, so that the rollups count each record once.
        await _replace_facts(session, fresh_ids, [
            fact_rows(rec, derive(RecordIn(rec.kind, rec.received_at, rec.real_name, rec.events),
                                   config.calendar, config.policies))
            for rec in fresh.values()
        ])
    ids = [i for i in ids if i not in fresh]
    for start in range(0, len(ids), RECORDS_PER_DERIVATION):
        await _derive_batch(session, ids[start:start + RECORDS_PER_DERIVATION], config)


async def _insert_facts(session: AsyncSession, facts: Sequence[FactRows]) -> None:
    await bulk_insert_ignoring_duplicates(session, KpiRecordFact, [r for r, _, _ in facts])
    await bulk_insert_ignoring_duplicates(session, KpiObligationFact, [o for _, obs, _ in facts for o in obs])
    await bulk_insert_ignoring_duplicates(session, KpiCallbackFact, [c for _, _, cbs in facts for c in cbs])


async def refresh_fact_units(session: AsyncSession) -> None:
    """Copy u1..u5 from the records into their facts again, after the unit tree changed shape
    (`gateway.ingest.units_file.refresh_record_ancestors`), and rebuild the rollups, whose keys are units."""
    for model in RECORD_FACT_MODELS:
        values = {
            f"u{n}": select(getattr(Complaint, f"u{n}")).where(Complaint.id == model.complaint_id).scalar_subquery()
            for n in range(1, 6)
        }
        await session.execute(update(model).values(**values).execution_options(synchronize_session=False))
    await rollups.rebuild(session)
