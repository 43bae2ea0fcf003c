"""Records decoded for storage: validated, and laid out as the rows of every table a new record fills.

This is the CPU-bound half of a bulk load, and it needs no database, so `gateway import` and `gateway sync`
run it in worker processes (`gateway.ingest.workers`) while the one process that talks to the database only
moves bytes. For each record it yields:

- the validation verdict (`gateway.complaints.decode`, with `validate_record`, the one validator, as the
  judge of what that does not accept outright), a rejection naming the reason as `validate_record` does;
- `RecordMeta`: the columns the flag rules and early warning look at, and the content digest;
- the record's rows as a new record: complaints, complainants, events (numbered in `at` order) and its KPI
  facts (`kpi.obligations.derive` over its own events, as `gateway.reports.facts.derive_facts` does for a
  new record). On PostgreSQL as COPY text, otherwise as tuples. The writer uses them only for records that
  turn out to be new (`gateway.ingest.store.store_chunk`); a known record takes the per-record path.

Everything here is a pure function of its input and the `Context` (units, KPI configuration).
"""

from __future__ import annotations

import json
import pickle
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

import msgspec
import orjson

from gateway.complaints.decode import Decoded, EventTuple, Refused, decode_fast, decode_object, from_model
from gateway.complaints.records import validate_record
from gateway.core import jsontext
from gateway.reports.facts import (
    CALLBACK_FACT_COLUMNS,
    OBLIGATION_FACT_COLUMNS,
    RECORD_FACT_COLUMNS,
    RELEVANT_EVENTS,
    KpiConfig,
    fact_tuples,
    kpi_config,
)
from gateway.units.tree import Unit, UnitIndex
from kpi.obligations import EventIn as KpiEvent
from kpi.obligations import RecordIn, derive

COMPLAINT_COLUMNS = (
    "id", "kind", "channel", "hotline", "urgency", "category", "received_at", "received_day", "handling_unit",
    "u1", "u2", "u3", "u4", "u5", "region_code", "respondent_uscc", "respondent_name", "real_name", "summary",
    "amount_involved_cents", "recovered_amount_cents", "content_hash", "record_updated_at", "created_at", "updated_at",
)
COMPLAINANT_COLUMNS = ("complaint_id", "name", "phone")
BOM = b"\xef\xbb\xbf"
EVENT_COLUMNS = ("id", "complaint_id", "seq", "type", "at", "unit", "data")

# table -> its columns, in the order the rows are laid out; the order in which a new record's rows are written
TABLES: dict[str, tuple[str, ...]] = {
    "complaints": COMPLAINT_COLUMNS,
    "complainants": COMPLAINANT_COLUMNS,
    "events": EVENT_COLUMNS,
    "kpi_record_facts": RECORD_FACT_COLUMNS,
    "kpi_obligation_facts": OBLIGATION_FACT_COLUMNS,
    "kpi_callback_facts": CALLBACK_FACT_COLUMNS,
}


@dataclass(frozen=True)
class Context:
    """What decoding needs besides the records: picklable, sent to the workers once per load."""

    units: dict[str, tuple[str | None, ...]]  # unit code -> the codes of its ancestors at levels 1..5
    holidays_file: str | None
    policy_file: str | None
    fingerprint: str  # of the KPI configuration the facts are derived with
    postgresql: bool  # rows as COPY text (PostgreSQL) or as tuples
    key: str = field(default_factory=lambda: uuid.uuid4().hex)


def make_context(units: UnitIndex, config: KpiConfig, holidays_file: str | None, policy_file: str | None,
                 postgresql: bool) -> Context:
    return Context(
        {code: unit.ancestors for code, unit in units.units.items()}, holidays_file, policy_file,
        config.fingerprint, postgresql,
    )


class RecordMeta(NamedTuple):
    """An accepted record: its position (line number, or index in a batch) and what the writer looks at."""

    position: int
    id: str
    digest: str
    derived: bool  # its facts rows are there (False: derivation failed; the per-record path will say why)
    kind: str
    urgency: str
    category: str
    received_at: datetime
    received_day: date
    handling_unit: str
    u1: str | None
    u2: str | None
    u3: str | None
    u4: str | None
    u5: str | None
    respondent_uscc: str | None
    summary: str | None  # only for CRITICAL records (their incident carries it)
    case_filed_at: datetime | None  # a REPORT with a USCC: its first CASE_FILED event


@dataclass
class Chunk:
    """The decoded records of one block of lines (or one batch of items)."""

    lines: int = 0  # the number of the block's last line (0 for items)
    rejected: list[tuple[int, str | None, str]] = field(default_factory=list)  # (position, id, reason)
    rejected_spans: list[tuple[int, int]] = field(default_factory=list)  # each rejected line's bytes in the block
    metas: list[RecordMeta] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)  # each accepted record's bytes in the block
    # table -> (rows, offsets): rows as COPY text (bytes) or a list of tuples; record i's rows are
    # rows[offsets[i]:offsets[i + 1]]
    tables: dict[str, tuple[Any, list[int]]] = field(default_factory=dict)
    source: Any = None  # the block (bytes) or the items: set by the caller, never sent back by a worker

    def raw(self, i: int) -> Any:
        """The i-th accepted record as it came: its line, or its item."""
        if self.spans:
            start, end = self.spans[i]
            return self.source[start:end]
        return self.source[self.metas[i].position]


def merge_chunks(chunks: Sequence[Chunk]) -> Chunk:
    """Consecutive chunks of one load as one, to be stored in one transaction: their records in order, their
    rows table by table. Chunks of blocks (`decode_block`, each with its block as `source`) or of item
    batches (`decode_items`, each with its items as `source`), not mixed."""
    if len(chunks) == 1:
        return chunks[0]
    blocks = isinstance(chunks[0].source, bytes)
    out = Chunk(lines=chunks[-1].lines,
                source=b"".join(c.source for c in chunks) if blocks else [i for c in chunks for i in c.source])
    base = 0
    for c in chunks:
        if blocks:  # positions are line numbers; records are found by their bytes in the block
            out.rejected += c.rejected
            out.rejected_spans += [(start + base, end + base) for start, end in c.rejected_spans]
            out.metas += c.metas
            out.spans += [(start + base, end + base) for start, end in c.spans]
        else:  # positions are indexes in the items
            out.rejected += [(i + base, rid, reason) for i, rid, reason in c.rejected]
            out.metas += [m._replace(position=m.position + base) for m in c.metas]
        base += len(c.source)
    for table in TABLES:
        parts = [c.tables[table] for c in chunks]
        offsets, shift = [0], 0
        for rows, row_offsets in parts:
            offsets += [o + shift for o in row_offsets[1:]]
            shift += len(rows)
        first = parts[0][0]
        out.tables[table] = (b"".join(r for r, _ in parts) if isinstance(first, bytes)
                             else [row for r, _ in parts for row in r], offsets)
    return out


# ------------------------------------------------------------------------------------------ worker state


@dataclass(frozen=True)
class Decoding:
    """A context ready for use: the unit tree and the KPI configuration."""

    units: UnitIndex
    config: KpiConfig
    postgresql: bool


_contexts: dict[str, Decoding] = {}


def _decoding(context: Decoding | Context | bytes) -> Decoding:
    if isinstance(context, Decoding):
        return context
    if isinstance(context, bytes):
        hit = _contexts.get(context[-32:].decode())
        if hit is not None:
            return hit
        context = pickle.loads(context[:-32])
    assert isinstance(context, Context)
    hit = _contexts.get(context.key)
    if hit is None:
        config = kpi_config(context.holidays_file, context.policy_file)
        if config.fingerprint != context.fingerprint:
            raise RuntimeError("the KPI calendar or policies changed during the load; run it again")
        units = UnitIndex({
            code: Unit(code, "", sum(1 for a in anc if a), None, anc) for code, anc in context.units.items()
        })
        _contexts.clear()
        hit = _contexts[context.key] = Decoding(units, config, context.postgresql)
    return hit


def pack_context(context: Context) -> bytes:
    """The context as sent to workers: pickled once, recognised by its key without unpickling."""
    return pickle.dumps(context) + context.key.encode()


# ---------------------------------------------------------------------------------------------- decoding


def validate(raw: Any, units: UnitIndex) -> Decoded:
    """One record (JSON text, or a decoded JSON value): Decoded, or ValueError with a one-line reason."""
    try:
        d = decode_fast(raw) if isinstance(raw, bytes | str) else decode_object(raw)
    except Refused:
        return from_model(validate_record(raw, units))
    if d.handling_unit not in units:
        raise ValueError(f"handling_unit: unknown unit code {d.handling_unit}")
    return d


def guess_id(line: bytes) -> str | None:
    """The `id` of a rejected line, when it has a readable one."""
    try:
        return raw_id(jsontext.decode(line))
    except ValueError:
        return None


def raw_id(raw: Any) -> str | None:
    """The `id` of an undecoded-or-invalid item when it has a string one that can be written out again (no
    U+0000, no lone surrogate), for naming a rejection; else None."""
    value = raw.get("id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) and jsontext.text_problem(value) is None else None


def decode_block(context: Decoding | Context | bytes, first_line: int, block: bytes) -> Chunk:
    """The lines of `block` (whole lines; the first is line `first_line`). Blank lines are skipped."""
    decoding = _decoding(context)
    units = decoding.units
    out = _Builder(decoding)
    number = first_line - 1
    start = 0
    end = len(block)
    while start < end:
        stop = block.find(b"\n", start)
        if stop < 0:
            stop = end
        number += 1
        if block[start:stop].strip():
            # Without its line ending; a byte-order mark an editor put before the first line is not part of
            # the record (as `gateway.ingest.importer` has always read lines).
            first, last = start, stop
            while last > first and block[last - 1] in b"\r\n":
                last -= 1
            if number == 1 and block.startswith(BOM, first):
                first += len(BOM)
            line = block[first:last]
            try:
                d = validate(line, units)
            except ValueError as exc:
                out.chunk.rejected.append((number, guess_id(line), str(exc)))
                out.chunk.rejected_spans.append((first, last))
            else:
                out.add(number, d, units)
                out.chunk.spans.append((first, last))
        start = stop + 1
    out.chunk.lines = number
    return out.finish()


def decode_items(context: Decoding | Context | bytes, items: Sequence[Any]) -> Chunk:
    """A batch of records as JSON values (dicts) or JSON texts; positions are indexes in `items`."""
    decoding = _decoding(context)
    units = decoding.units
    out = _Builder(decoding)
    for i, item in enumerate(items):
        if isinstance(item, msgspec.Raw):
            item = bytes(item)
        try:
            d = validate(item, units)
        except ValueError as exc:
            out.chunk.rejected.append((i, guess_id(item) if isinstance(item, bytes) else raw_id(item), str(exc)))
        else:
            out.add(i, d, units)
    return out.finish()


# ------------------------------------------------------------------------------------------------- rows


class _Builder:
    def __init__(self, decoding: Decoding) -> None:
        self.chunk = Chunk()
        self.config = decoding.config
        self.now = datetime.now(UTC)
        self.postgresql = decoding.postgresql
        self.rows: dict[str, list[Any]] = {table: [] for table in TABLES}
        self.offsets: dict[str, list[int]] = {table: [0] for table in TABLES}
        self.sizes = dict.fromkeys(TABLES, 0)
        self.now_text = self.now.isoformat()

    def add(self, position: int, d: Decoded, units: UnitIndex) -> None:
        unit = units.get(d.handling_unit)
        assert unit is not None
        u1, u2, u3, u4, u5 = unit.ancestors
        ordered = d.sorted_events()
        derived = True
        try:
            facts = derive(
                RecordIn(d.kind, d.received_at, d.real_name,
                         [KpiEvent(type_, at, data) for _, type_, at, _, data in ordered if type_ in RELEVANT_EVENTS]),
                self.config.calendar, self.config.policies,
            )
        except ValueError:  # a date outside the calendar, no policy in force: the per-record path reports it
            derived = False
            fact_rows: Any = ((), (), ())
        else:
            grouping = (d.id, u1, u2, u3, u4, u5, d.received_day, d.received_at)
            fact_rows = fact_tuples(grouping, d.kind, d.channel, d.hotline, d.recovered_cents, facts)
        if self.postgresql:
            self._add_text(d, unit.ancestors, ordered, fact_rows)
        else:
            self._add_tuples(d, unit.ancestors, ordered, fact_rows)
        case_filed = None
        if d.kind == "REPORT" and d.respondent_uscc:
            case_filed = min((at for _, type_, at, _, _ in d.events if type_ == "CASE_FILED"), default=None)
        self.chunk.metas.append(RecordMeta(
            position, d.id, d.digest, derived, d.kind, d.urgency, d.category, d.received_at, d.received_day,
            d.handling_unit, u1, u2, u3, u4, u5, d.respondent_uscc,
            d.summary if d.urgency == "CRITICAL" else None, case_filed,
        ))

    def _add_tuples(self, d: Decoded, anc: tuple[str | None, ...], ordered: list[EventTuple], facts: Any) -> None:
        rows: dict[str, Sequence[tuple[Any, ...]]] = {
            "complaints": [(
                d.id, d.kind, d.channel, d.hotline, d.urgency, d.category, d.received_at, d.received_day,
                d.handling_unit, *anc, d.region_code, d.respondent_uscc, d.respondent_name,
                d.real_name, d.summary, d.amount_cents, d.recovered_cents, d.digest, d.updated_at, self.now, self.now,
            )],
            "complainants": [(d.id, d.complainant_name, d.complainant_phone)],
            "events": [
                (eid, d.id, seq, type_, at, unit, data) for seq, (eid, type_, at, unit, data) in enumerate(ordered)
            ],
            "kpi_record_facts": [facts[0]] if facts[0] else [],
            "kpi_obligation_facts": facts[1],
            "kpi_callback_facts": facts[2],
        }
        for table, table_rows in rows.items():
            self.rows[table] += table_rows
            self.offsets[table].append(len(self.rows[table]))

    def _add_text(self, d: Decoded, anc: tuple[str | None, ...], ordered: list[EventTuple], facts: Any) -> None:
        iso = _Iso()
        rid = _text(d.id)
        received = iso[d.received_at]
        u1, u2, u3, u4, u5 = (N if a is None else a for a in anc)
        day = d.received_day.isoformat()
        texts = [
            f"{rid}\t{d.kind}\t{d.channel}\t{d.hotline or N}\t{d.urgency}\t{d.category}\t{received}\t{day}\t"
            f"{d.handling_unit}\t{u1}\t{u2}\t{u3}\t{u4}\t{u5}\t{d.region_code or N}\t{d.respondent_uscc or N}\t"
            f"{_text(d.respondent_name)}\t{'t' if d.real_name else 'f'}\t{_text(d.summary)}\t"
            f"{_number(d.amount_cents)}\t{_number(d.recovered_cents)}\t{d.digest}\t{_at(iso, d.updated_at)}\t"
            f"{self.now_text}\t{self.now_text}\n",
            f"{rid}\t{_text(d.complainant_name)}\t{_text(d.complainant_phone)}\n",
            "".join([
                f"{_text(eid)}\t{rid}\t{seq}\t{type_}\t{iso[at]}\t{unit or N}\t{_json(data)}\n"
                for seq, (eid, type_, at, unit, data) in enumerate(ordered)
            ]),
        ]
        if facts[0]:
            g = f"{rid}\t{u1}\t{u2}\t{u3}\t{u4}\t{u5}\t{day}\t{received}\t"
            r = facts[0]
            texts.append(
                f"{g}{r[8]}\t{r[9]}\t{r[10] or N}\t{r[11]}\t{_at(iso, r[12])}\t{_at(iso, r[13])}\t{_at(iso, r[14])}\t"
                f"{_at(iso, r[15])}\t{_at(iso, r[16])}\t{'t' if r[17] else 'f'}\t{_at(iso, r[18])}\t"
                f"{'t' if r[19] else 'f'}\t{_at(iso, r[20])}\t{_day(r[21])}\t{_day(r[22])}\t{_text(r[23])}\t"
                f"{r[24] or N}\t{r[25] or N}\t{r[26] or N}\t{r[27] or N}\t{r[28] or N}\n"
            )
            texts.append("".join([
                f"{g}{o[8]}\t{o[9]}\t{_text(o[10])}\t{iso[o[11]]}\t{_at(iso, o[12])}\t{o[13].isoformat()}\t"
                f"{_at(iso, o[14])}\t{'t' if o[15] else 'f'}\n"
                for o in facts[1]
            ]))
            texts.append("".join([
                f"{g}{c[8]}\t{iso[c[9]]}\t{_at(iso, c[10])}\t{c[11]}\n" for c in facts[2]
            ]))
        else:
            texts += ("", "", "")
        for table, text in zip(TABLES, texts, strict=True):
            data = text.encode()
            self.rows[table].append(data)
            self.sizes[table] += len(data)
            self.offsets[table].append(self.sizes[table])

    def finish(self) -> Chunk:
        for table in TABLES:
            rows: Any = b"".join(self.rows[table]) if self.postgresql else self.rows[table]
            self.chunk.tables[table] = (rows, self.offsets[table])
        return self.chunk


# ------------------------------------------------------------------------------------------- COPY text
# PostgreSQL's text format: tab-separated, \N for NULL, backslash escapes. Codes and enumerations are checked
# to be plain (digits, capitals) and go in as they are; free text is escaped.

N = "\\N"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text(value: str | None) -> str:
    if value is None:
        return N
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_ESCAPES)
    return value


def _day(value: date | None) -> str:
    return N if value is None else value.isoformat()


def _number(value: int | None) -> str:
    return N if value is None else str(value)


class _Iso(dict[datetime, str]):
    """Instants as text, each formatted once per record (the same few recur across its rows)."""

    def __missing__(self, key: datetime) -> str:
        text = self[key] = key.isoformat()
        return text


def _at(iso: _Iso, value: datetime | None) -> str:
    return N if value is None else iso[value]


def json_text(value: Any) -> str:
    """A JSON column's text: compact, non-ASCII as is (integers beyond 64 bits through the json module)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _json(value: Any) -> str:
    return _text(json_text(value)) if value else "{}"
