"""Storing records: validation against the unit tree, and the idempotent upsert of records.md.

A known id replaces the record's fields and merges its events by event id; the very same record sent
again changes nothing (its content hash matches). A stale copy (records.md 1.1, Versions: an `updated_at`
earlier than the stored one) only merges its events: `replaces` decides, in Python for the batch and as
the SQL condition `replaces_sql` on the UPDATE, so that a writer racing a newer copy changes nothing.
Everything here runs inside the caller's transaction, so derived data (KPI facts, complaint flags)
commits or rolls back with the records that caused it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import ARRAY, ColumnElement, String, Table, bindparam, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.complaints.decode import from_model
from gateway.complaints.models import Complainant, Complaint, Event
from gateway.complaints.records import ComplaintIn, EventIn, validate_record
from gateway.core.bulk import bulk_insert_ignoring_duplicates, copy_text_ignoring_duplicates, insert_ignoring_duplicates
from gateway.core.db import UTCDateTime, each_by_key, transaction
from gateway.core.money import money_to_cents
from gateway.core.settings import get_settings
from gateway.flags.rules import raise_flags, raise_flags_for
from gateway.ingest.metrics import Source, count_on_commit
from gateway.ingest.pipeline import TABLES, Chunk, Decoding, decode_items, make_context, raw_id
from gateway.ingest.workers import Decoders
from gateway.reports import rollups
from gateway.reports.facts import RELEVANT_EVENTS, NewRecord, configured, derive_facts, ensure_current
from gateway.reports.models import KpiCallbackFact, KpiObligationFact, KpiRecordFact
from gateway.units.tree import UnitIndex, load_units
from kpi import obligations

__all__ = [
    "RECORDS_PER_TRANSACTION", "IngestResult", "Rejection", "ingest_raw", "load_units", "raw_id", "replaces",
    "replaces_sql", "store_chunk", "store_records", "upsert_records",
]

# Records a bulk load (import, sync) stores per transaction: the rollup rows and surge counts a transaction
# updates are shared by its records, so bigger transactions update each of them once for more records.
# 20,000 took 3.7 % less CPU than 12,000 for the same import (bench: CPU seconds of every process), for
# ~70 MiB more in the importer at its peak.
RECORDS_PER_TRANSACTION = 20_000

_COMPLAINTS: Table = Complaint.__table__  # type: ignore[assignment]
_COMPLAINANTS: Table = Complainant.__table__  # type: ignore[assignment]


@dataclass(slots=True)
class Rejection:
    index: int  # position in the batch, or line number for files
    id: str | None
    reason: str


@dataclass(slots=True)
class UpsertResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0  # known records whose copy was older than the stored one: only their events merged
    changed_ids: list[str] = field(default_factory=list)
    new: list[NewRecord] = field(default_factory=list)  # the records inserted, as their facts are derived


@dataclass(slots=True)
class IngestResult:
    stored: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0


async def ingest_raw(
    session: AsyncSession,
    raws: Sequence[Any],
    units: UnitIndex | None = None,
    *,
    source: Source | None = None,
    per_record: bool = False,
) -> IngestResult:
    """Validate a batch of decoded records (records.md) and store the good ones in the caller's transaction.

    Bad items are reported (`IngestResult.rejected`: position in `raws`, id if any, reason) and skipped;
    the good ones are all stored (`store_chunk`). `source` names the way in for the
    `gateway_ingest_records_total` counter; None counts nothing (tests, benchmarks). `per_record` sends every
    record through the per-record path (`upsert_records`), new ones included.
    """
    units = units if units is not None else await load_units(session)
    chunk = decode_items(Decoding(units, configured(), is_postgresql(session)), raws)
    chunk.source = raws
    if source is not None:
        count_on_commit(session, source, "rejected", len(chunk.rejected))
    upserted = await store_chunk(session, chunk, units, source=source, per_record=per_record)
    result = IngestResult(stored=len(chunk.metas))
    result.rejected = [Rejection(i, rid, reason) for i, rid, reason in chunk.rejected]
    result.inserted, result.updated, result.unchanged = upserted.inserted, upserted.updated, upserted.unchanged
    result.stale = upserted.stale
    return result


async def store_records(
    session: AsyncSession, records: list[ComplaintIn], units: UnitIndex, *, source: Source | None = None
) -> UpsertResult:
    """The one way in for valid records, whatever brought them (import, push, sync): the upsert
    (`upsert_records`) and, once the caller's transaction commits, `gateway_ingest_records_total{source,
    result="stored"}` (None counts nothing)."""
    result = await upsert_records(session, records, units)
    if source is not None:
        count_on_commit(session, source, "stored", len(records))
    return result


async def prepare_decoders(sessionmaker: async_sessionmaker[AsyncSession], decoders: Decoders) -> UnitIndex:
    """Set up `decoders` for a bulk load: the unit tree, and the KPI configuration the stored facts are
    brought up to first (the decoders derive new records' facts with it). Returns the units."""
    settings = get_settings()
    config = configured()
    async with transaction(sessionmaker) as session:
        units = await load_units(session)
        await ensure_current(session, config)
        postgresql = is_postgresql(session)
    decoders.use(
        Decoding(units, config, postgresql),
        make_context(units, config, settings.holidays_file, settings.policy_file, postgresql),
    )
    return units


def is_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


# -------------------------------------------------------------------------------------------- fast path


async def store_chunk(
    session: AsyncSession,
    chunk: Chunk,
    units: UnitIndex,
    *,
    source: Source | None = None,
    per_record: bool = False,
) -> UpsertResult:
    """Store a decoded chunk in the caller's transaction, with the result `upsert_records` would give.

    New records (the common case of a bulk load) take the fast path: their rows, laid out by the decoder,
    go in by COPY (PostgreSQL) or one multi-row INSERT per table, their KPI facts with them, and the flag
    rules see them from memory. A record already stored with the same digest is unchanged; one stored with
    another digest, sent twice in the chunk, or whose facts could not be derived, takes the per-record path
    (`upsert_records`: field replacement, event merge). New rows go in first, so that what the per-record
    path then derives (surge counts, early warning) sees the whole chunk, as a single `upsert_records`
    call over the chunk would. Its records are counted as stored (`source`) once the caller's transaction
    commits; None counts nothing. Its rejections are the caller's to count.
    """
    result = UpsertResult()
    metas = chunk.metas
    if source is not None:
        count_on_commit(session, source, "stored", len(metas))
    if not metas:
        return result
    times = Counter(m.id for m in metas)
    stored = {} if per_record else await _stored_digests(session, list(times))
    fast: list[int] = []
    slow: list[int] = []
    for i, m in enumerate(metas):
        if per_record or times[m.id] > 1:
            slow.append(i)
        elif m.id in stored:
            if stored[m.id] == m.digest:
                result.unchanged += 1
            else:
                slow.append(i)
        elif m.derived:
            fast.append(i)
        else:
            slow.append(i)
    if fast:
        config = configured()
        await ensure_current(session, config)
        if not await _insert_new(session, chunk, fast):  # another writer stored one of them meanwhile
            slow, fast = sorted(slow + fast), []
    if slow:
        records = [validate_record(chunk.raw(i), units) for i in slow]
        changed_ids: list[str] = []
        new_records: list[NewRecord] = []
        for part in _slices_by_id(records, PER_RECORD_BATCH):
            upserted = await upsert_records(session, part, units, derive=False)
            result.inserted += upserted.inserted
            result.updated += upserted.updated
            result.unchanged += upserted.unchanged
            result.stale += upserted.stale
            changed_ids += upserted.changed_ids
            new_records += upserted.new
        # Derived once for all the slices, as for one call: a surge crossing two thresholds within the
        # transaction is raised once at its final severity, not raised and then escalated.
        await after_store(session, changed_ids, new_records)
    if fast:
        new = [metas[i] for i in fast]
        await rollups.add(session, [m.id for m in new])
        await raise_flags_for(session, new, {m.id: m.case_filed_at for m in new}, inserted=True)
        result.inserted += len(fast)
    return result


# Records the per-record path takes at once: its queries list the records' ids and their events' ids, and
# both databases bound the parameters of a statement (32,767).
PER_RECORD_BATCH = 2000


def _slices_by_id(records: list[ComplaintIn], size: int) -> list[list[ComplaintIn]]:
    """`records` in slices of about `size`, every copy of one id in the same slice (in their order)."""
    by_id: dict[str, list[ComplaintIn]] = {}
    for record in records:
        by_id.setdefault(record.id, []).append(record)
    slices: list[list[ComplaintIn]] = [[]]
    for copies in by_id.values():
        if slices[-1] and len(slices[-1]) + len(copies) > size:
            slices.append([])
        slices[-1] += copies
    return slices


async def _stored_digests(session: AsyncSession, ids: list[str]) -> dict[str, str]:
    stored: dict[str, str] = {}
    if is_postgresql(session):
        stored_rows, rows = each_by_key(_COMPLAINTS, "id", bindparam("ids", ids, type_=ARRAY(String)), "stored")
        query = select(stored_rows.id, stored_rows.content_hash).select_from(rows)
        stored.update((await session.execute(query)).tuples().all())
        return stored
    for start in range(0, len(ids), 900):  # under SQLite's bound-parameter limit
        query = select(Complaint.id, Complaint.content_hash).where(Complaint.id.in_(ids[start:start + 900]))
        stored.update((await session.execute(query)).tuples().all())
    return stored


_MODELS: dict[str, Any] = {
    "complaints": Complaint, "complainants": Complainant, "events": Event, "kpi_record_facts": KpiRecordFact,
    "kpi_obligation_facts": KpiObligationFact, "kpi_callback_facts": KpiCallbackFact,
}


async def _insert_new(session: AsyncSession, chunk: Chunk, selected: list[int]) -> bool:
    """The rows of the selected (new) records, table by table; False, with nothing written, when a record
    id turned out to be taken (a concurrent writer)."""
    everything = len(selected) == len(chunk.metas)
    if not is_postgresql(session):
        for table, (rows, offsets) in chunk.tables.items():
            picked = rows if everything else [r for i in selected for r in rows[offsets[i]:offsets[i + 1]]]
            if picked:
                columns = TABLES[table]
                await session.execute(
                    insert_ignoring_duplicates(session, _MODELS[table]),
                    [dict(zip(columns, r, strict=True)) for r in picked],
                )
        return True
    conn = await session.connection()
    raw = (await conn.get_raw_connection()).driver_connection
    assert raw is not None
    parts: dict[str, list[memoryview]] = {}
    for table, (data, offsets) in chunk.tables.items():
        view = memoryview(data)
        parts[table] = [view] if everything else [view[offsets[i]:offsets[i + 1]] for i in selected]
    try:
        async with raw.transaction():  # one savepoint: undone as a whole if a key is taken
            for table, table_parts in parts.items():
                await raw.copy_to_table(table, source=_parts(table_parts), columns=list(TABLES[table]), format="text")
        return True
    except asyncpg.UniqueViolationError as exc:
        if exc.table_name == "complaints":  # another writer stored one of these records meanwhile
            return False
    # An event id (or a facts key) is stored already: as `upsert_records` does, those rows are skipped.
    for table, table_parts in parts.items():
        await copy_text_ignoring_duplicates(session, table, TABLES[table], table_parts)
    return True


async def _parts(parts: list[memoryview]) -> AsyncIterator[memoryview]:
    for part in parts:
        if part:
            yield part


# ----------------------------------------------------------------------------------------------- upsert


def content_hash(record: ComplaintIn) -> str:
    """SHA-256 (hex) of the validated record's normalised values: equal for the same record sent again, whichever
    way it comes in (the fast path computes the same digest, `gateway.complaints.decode`)."""
    return from_model(record).digest


# ---------------------------------------------------------------------------------------------- versions


def replaces(stored: datetime | None, incoming: datetime | None) -> bool:
    """records.md 1.1 (Versions): whether a copy with `updated_at` = `incoming` replaces the fields of one
    with `stored`. Only when both are known and the incoming one is earlier is the copy stale (False): its
    fields are kept out, its events still merge. Equal or later, or no version on either side: True."""
    return stored is None or incoming is None or incoming >= stored


def replaces_sql(incoming: ColumnElement[Any]) -> ColumnElement[bool]:
    """`replaces` as a condition on the stored complaints row, given the incoming version as SQL."""
    stored = _COMPLAINTS.c.record_updated_at
    return or_(stored.is_(None), incoming.is_(None), stored <= incoming)


def _merge_versions(old: ComplaintIn, new: ComplaintIn) -> ComplaintIn:
    """Two copies of one record in the same batch: fields of the one that `replaces` the other (the later
    version; the later in the batch when versions tie or are missing), events merged by id."""
    events = {e.id: e for e in old.events}
    if not replaces(old.updated_at, new.updated_at):
        events.update({e.id: e for e in new.events if e.id not in events})  # stale: adds, never rewrites
        return old.model_copy(update={"events": list(events.values())})
    events.update({e.id: e for e in new.events})
    return new.model_copy(update={"events": list(events.values())})


def _complaint_row(record: ComplaintIn, units: UnitIndex, digest: str, now: datetime) -> dict[str, Any]:
    unit = units.get(record.handling_unit)
    assert unit is not None, "validate_record checks the handling unit"
    resp = record.respondent
    return {
        "id": record.id,
        "kind": record.kind,
        "channel": record.channel,
        "hotline": record.hotline,
        "urgency": record.urgency,
        "category": record.category,
        "received_at": record.received_at,
        "received_day": record.received_day,
        "handling_unit": record.handling_unit,
        "u1": unit.ancestors[0],
        "u2": unit.ancestors[1],
        "u3": unit.ancestors[2],
        "u4": unit.ancestors[3],
        "u5": unit.ancestors[4],
        "region_code": record.region_code,
        "respondent_uscc": resp.uscc if resp else None,
        "respondent_name": resp.name if resp else None,
        "real_name": record.complainant.real_name,
        "summary": record.summary,
        "amount_involved_cents": money_to_cents(record.amount_involved),
        "recovered_amount_cents": money_to_cents(record.recovered_amount),
        "content_hash": digest,
        "record_updated_at": record.updated_at,
        "updated_at": now,
    }


def _event_row(complaint_id: str, seq: int, ev: EventIn) -> dict[str, Any]:
    return {
        "id": ev.id,
        "complaint_id": complaint_id,
        "seq": seq,
        "type": ev.type,
        "at": ev.at,
        "unit": ev.unit,
        "data": ev.data,
    }


async def upsert_records(
    session: AsyncSession, records: list[ComplaintIn], units: UnitIndex, *, derive: bool = True
) -> UpsertResult:
    """Store valid records (records.md's upsert) in the caller's transaction; returns how many were inserted, updated,
    unchanged and stale, and the ids of the new and changed ones (`changed_ids`).

    A known id replaces the record's fields and merges its events by event id, unless the copy is stale
    (records.md 1.1, Versions: `replaces`), when only its events merge; the very same record again changes
    nothing (its content hash matches); several versions of one id in `records` are merged, the later version's
    fields winning. Every record's handling unit must be in `units` (`validate_record` checks it): an
    AssertionError otherwise. Side effects: KPI facts derived and flag rules run for the changed records
    (`after_store`), unless `derive` is False: then the caller runs `after_store` with the result's
    `changed_ids` and `new`. On PostgreSQL new rows go in by binary COPY (`bulk_insert_ignoring_duplicates`), which
    rewrites JSON values of the row dicts it is given to text. Database errors propagate; the caller's
    transaction then stores nothing.
    """
    result = UpsertResult()
    if not records:
        return result
    by_id: dict[str, ComplaintIn] = {}
    digests: dict[str, str] = {}  # of the copy whose fields won
    merged: set[str] = set()  # ids sent more than once here: the merge may hold events no single version has
    for record in records:
        prev = by_id.get(record.id)
        if prev is None:
            digests[record.id] = content_hash(record)
        else:
            merged.add(record.id)
            if replaces(prev.updated_at, record.updated_at):
                digests[record.id] = content_hash(record)
        by_id[record.id] = _merge_versions(prev, record) if prev else record

    rows = await session.execute(
        select(Complaint.id, Complaint.content_hash, Complaint.record_updated_at).where(Complaint.id.in_(list(by_id)))
    )
    stored: dict[str, tuple[str, datetime | None]] = {rid: (digest, version) for rid, digest, version in rows.tuples()}
    now = datetime.now(UTC)
    new: list[ComplaintIn] = []
    changed: list[ComplaintIn] = []
    stale: list[ComplaintIn] = []
    for rid, r in by_id.items():
        if rid not in stored:
            new.append(r)
        elif not replaces(stored[rid][1], r.updated_at):
            stale.append(r)
        elif stored[rid][0] != digests[rid] or rid in merged:
            changed.append(r)
    result.unchanged = len(by_id) - len(new) - len(changed) - len(stale)

    if new:
        await bulk_insert_ignoring_duplicates(
            session, Complaint, [_complaint_row(r, units, digests[r.id], now) | {"created_at": now} for r in new]
        )
        await bulk_insert_ignoring_duplicates(
            session,
            Complainant,
            [{"complaint_id": r.id, "name": r.complainant.name, "phone": r.complainant.phone} for r in new],
        )
        await bulk_insert_ignoring_duplicates(
            session, Event, [_event_row(r.id, seq, ev) for r in new for seq, ev in enumerate(r.sorted_events())]
        )
    events_changed: set[str] = set()
    if changed:
        await _replace_fields(session, [(r, digests[r.id]) for r in changed], units, now)
        events_changed = await merge_events(session, {r.id: r.events for r in changed})
    if stale:
        stale_ids = {r.id for r in stale}
        events_changed |= await merge_events(session, {r.id: r.events for r in stale}, keep_stored=stale_ids)

    result.inserted, result.updated, result.stale = len(new), len(changed), len(stale)
    result.changed_ids = [r.id for r in new] + [r.id for r in changed] + [r.id for r in stale if r.id in events_changed]
    result.new = [_new_record(r, units) for r in new]
    if derive:
        await after_store(session, result.changed_ids, result.new)
    return result


async def _replace_fields(
    session: AsyncSession, records: list[tuple[ComplaintIn, str]], units: UnitIndex, now: datetime
) -> None:
    """UPDATE the records' fields where the stored row is not newer (`replaces_sql`): a concurrent writer
    that stored a later version first wins. The complainant follows only where the record's fields did."""
    rows = []
    for record, digest in records:
        row = _complaint_row(record, units, digest, now)
        row["b_id"] = row.pop("id")
        row["b_version"] = record.updated_at
        rows.append(row)
    await session.execute(
        update(_COMPLAINTS).where(
            _COMPLAINTS.c.id == bindparam("b_id"), replaces_sql(bindparam("b_version", type_=UTCDateTime))
        ),
        rows,
    )
    c = _COMPLAINTS.c
    await session.execute(
        update(_COMPLAINANTS).where(
            _COMPLAINANTS.c.complaint_id == bindparam("b_id"),
            exists().where(c.id == bindparam("b_id"), c.content_hash == bindparam("b_digest")),
        ),
        [
            {"b_id": r.id, "b_digest": digest, "name": r.complainant.name, "phone": r.complainant.phone}
            for r, digest in records
        ],
    )


def _new_record(record: ComplaintIn, units: UnitIndex) -> NewRecord:
    unit = units.get(record.handling_unit)
    assert unit is not None
    u1, u2, u3, u4, u5 = unit.ancestors
    return NewRecord(
        record.id, record.kind, record.channel, record.hotline, record.received_at, record.received_day,
        record.complainant.real_name, money_to_cents(record.recovered_amount), u1, u2, u3, u4, u5,
        [obligations.EventIn(ev.type, ev.at, ev.data) for ev in record.sorted_events() if ev.type in RELEVANT_EVENTS],
    )


async def merge_events(
    session: AsyncSession, incoming: dict[str, list[EventIn]], keep_stored: Collection[str] = ()
) -> set[str]:
    """Merge events into stored records by event id, then renumber each record's history by `at`; returns
    the ids of the records whose events changed.

    Ties in `at` keep the order in which events became known: stored ones first, then the new ones
    in the order given. An event id already stored under another record is left alone (stored once).
    For the records in `keep_stored` (stale copies) a stored event keeps its content; new ones are added.
    """
    rows = (
        await session.execute(
            select(Event.id, Event.complaint_id, Event.seq, Event.at, Event.type, Event.unit, Event.data)
            .where(Event.complaint_id.in_(list(incoming)))
            .order_by(Event.complaint_id, Event.seq)
        )
    ).all()
    stored_by_record: dict[str, list[Any]] = {cid: [] for cid in incoming}
    for row in rows:
        stored_by_record[row.complaint_id].append(row)
    incoming_ids = [ev.id for events in incoming.values() for ev in events]
    elsewhere = set(
        (
            await session.execute(
                select(Event.id).where(
                    Event.id.in_(incoming_ids), Event.complaint_id.not_in(list(incoming))
                )
            )
        ).scalars()
    ) if incoming_ids else set()

    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    changed: set[str] = set()
    for cid, events in incoming.items():
        stored = stored_by_record[cid]
        by_id = {ev.id: ev for ev in events if ev.id not in elsewhere}
        stored_ids = {row.id for row in stored}
        keep = cid in keep_stored
        # (at, arrival order, event id, new content or None, old row or None)
        merged: list[tuple[datetime, int, str, EventIn | None, Any]] = []
        for order, row in enumerate(stored):
            ev = None if keep else by_id.get(row.id)
            merged.append((ev.at if ev else row.at, order, row.id, ev, row))
        for order, ev in enumerate(events, start=len(stored)):
            if ev.id not in stored_ids and ev.id in by_id:
                merged.append((ev.at, order, ev.id, ev, None))
        merged.sort(key=lambda m: (m[0], m[1]))
        for seq, (_, _, _, ev, row) in enumerate(merged):
            if row is None:
                assert ev is not None
                inserts.append(_event_row(cid, seq, ev))
                changed.add(cid)
            elif ev is not None:
                new_row = _event_row(cid, seq, ev)
                if (row.seq, row.type, row.at, row.unit, row.data) != (
                    seq, new_row["type"], new_row["at"], new_row["unit"], new_row["data"]
                ):
                    updates.append(new_row)
                    changed.add(cid)
            elif row.seq != seq:
                updates.append(_event_row_seq_only(row, seq))
                changed.add(cid)
    if updates:
        full = [u for u in updates if "type" in u]
        seq_only = [u for u in updates if "type" not in u]
        if full:
            await session.execute(update(Event), full)
        if seq_only:
            await session.execute(update(Event), seq_only)
    await bulk_insert_ignoring_duplicates(session, Event, inserts)
    return changed


def _event_row_seq_only(row: Any, seq: int) -> dict[str, Any]:
    return {"id": row.id, "seq": seq}


async def after_store(session: AsyncSession, changed_ids: list[str], new: Sequence[NewRecord] = ()) -> None:
    """Derived data that must commit with the records that caused it (KPI facts, complaint flags)."""
    if not changed_ids:
        return
    await derive_facts(session, changed_ids, new=new)
    await raise_flags(session, changed_ids)
