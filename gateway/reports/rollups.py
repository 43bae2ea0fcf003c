"""Rollups of the records' final views, kept in the transaction that stores their facts.

Why: a report's cost then depends on the units and days it covers, not on the records in them. Once a
record's last fact has happened (`kpi_record_facts.last_change_at`), its contribution at any later `as_of` is
its final view (kpi.obligations.FinalView) less the obligations no event fulfils whose due date is not yet
behind `as_of`. So a report (gateway.reports.build) is

    kpi_rollup over the days                                  (every record's final view)
  - kpi_open_rollup over the days with due_day >= as_of's day  (open obligations still PENDING at as_of)
  + for the few records with last_change_at > as_of: their state at as_of minus their final view.

The maintenance contract, for every path that writes facts (gateway.reports.facts, and any set-based
import that replaces it):

- `retract(session, ids)` BEFORE the facts of already-stored records are deleted or replaced;
- `add(session, ids)` AFTER the facts of these records are inserted;
- `rebuild(session)` after facts were rewritten wholesale (configuration change, unit tree moved).

All three are set-based SQL (INSERT … SELECT … GROUP BY … ON CONFLICT DO UPDATE adding signed counts) on
PostgreSQL and SQLite, inside the caller's transaction. Rows are added to in key order, so two writers
lock shared rollup rows in the same order. A rollup row whose records all left keeps zeros until the next
rebuild; zeros change no sum.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    Integer,
    String,
    and_,
    any_,
    bindparam,
    case,
    delete,
    extract,
    func,
    literal,
    literal_column,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from gateway.core.bulk import dialect_insert
from gateway.core.db import each_by_key
from gateway.reports.models import (
    ROLLUP_DEPTHS,
    ROLLUP_MEASURES,
    KpiObligationFact,
    KpiRecordFact,
    kpi_open_rollup,
    kpi_rollup,
)
from kpi.metrics import CHANNELS, HOTLINES, KINDS
from kpi.obligations import LATE, ON_TIME, OVERDUE, SATISFIED_VALUES, UNREACHABLE
from kpi.policies import OBLIGATIONS

_STATE_VALUES = {"on_time": ON_TIME, "late": LATE, "overdue": OVERDUE}


def id_in(column: Any, ids: Sequence[str], dialect: str) -> ColumnElement[bool]:
    """`column IN ids`; on PostgreSQL as `= ANY(array)`: one parameter instead of thousands to render."""
    if dialect == "postgresql":
        return column == any_(bindparam("ids", list(ids), type_=ARRAY(String)))
    return column.in_(ids)


def _flag(condition: ColumnElement[bool]) -> Any:
    return case((condition, 1), else_=0)


def final_measures(r: Any = KpiRecordFact) -> dict[str, Any]:
    """Per record of `kpi_record_facts` (or an alias of it): each rollup measure of its final view."""
    out: dict[str, Any] = {"records": literal(1, Integer)}
    out |= {f"kind_{k.lower()}": _flag(r.kind == k) for k in KINDS}
    out |= {f"channel_{c.lower()}": _flag(r.channel == c) for c in CHANNELS}
    out |= {f"hotline_{h}": _flag(r.hotline == h) for h in HOTLINES}
    out |= {
        "reply_owed": _flag(r.reply_owed_at.is_not(None)),
        "replied": _flag(r.replied_at.is_not(None)),
        "concluded": _flag(r.concluded_at.is_not(None)),
        "called_back": _flag(and_(r.concluded_at.is_not(None), r.first_callback_at.is_not(None))),
        "mediation_outcomes": _flag(r.mediation_outcome_at.is_not(None)),
        "mediation_succeeded": _flag(and_(r.mediation_outcome_at.is_not(None), r.mediation_succeeded)),
        "decided": _flag(r.decided_at.is_not(None)),
        "case_filed": _flag(and_(r.decided_at.is_not(None), r.case_filed)),
        "callback_reachable": _flag(and_(r.final_satisfaction.is_not(None), r.final_satisfaction != UNREACHABLE)),
        "satisfied": _flag(r.final_satisfaction.in_(sorted(SATISFIED_VALUES))),
        "recovered_cents": r.recovered_cents,
    }
    for code in OBLIGATIONS:
        column = getattr(r, f"final_{code.lower()}")
        out |= {f"{code.lower()}_{state}": _flag(column == value) for state, value in _STATE_VALUES.items()}
    assert tuple(out) == ROLLUP_MEASURES
    return out


def _depths() -> Any:
    return union_all(*(select(literal(d, Integer).label("depth")) for d in ROLLUP_DEPTHS)).subquery("depths")


def _unit_keys(depth: Any, source: Any) -> list[Any]:
    """u1..u5 of a rollup row at `depth`: the record's ancestors down to that depth, '' below it or missing."""
    return [
        case((depth >= n, func.coalesce(getattr(source, f"u{n}"), "")), else_="").label(f"u{n}")
        for n in range(1, 6)
    ]


def _upsert(dialect: str, table: Any, key: list[str], values: list[str], source: Any) -> Any:
    stmt = dialect_insert(dialect, table).from_select([*key, *values], source)
    return stmt.on_conflict_do_update(
        index_elements=key, set_={v: table.c[v] + getattr(stmt.excluded, v) for v in values}
    )


def _facts_of(model: Any, dialect: str, by_ids: bool) -> tuple[Any, Any, ColumnElement[bool]]:
    """(columns, FROM clause, WHERE condition) of the rows of a facts table that belong to the records `:ids`
    (by_ids), or of all its rows; on PostgreSQL looked up id by id (`each_by_key` says why)."""
    if not by_ids:
        return model, model, true()
    if dialect == "postgresql":
        ids = bindparam("ids", type_=ARRAY(String))
        columns, rows = each_by_key(model.__table__, "complaint_id", ids, f"{model.__tablename__}_rows")
        return columns, rows, true()
    return model, model, model.complaint_id.in_(bindparam("ids", expanding=True))


@lru_cache(maxsize=8)
def _statements(dialect: str, by_ids: bool) -> tuple[Any, Any]:
    """The two upserts (kpi_rollup, kpi_open_rollup) adding `:sign` times the final views of the records
    whose ids are `:ids` (by_ids) or of every record; built once (a statement object keeps its cache key)."""
    return _build(dialect, _facts_of(KpiRecordFact, dialect, by_ids), _facts_of(KpiObligationFact, dialect, by_ids))


def _build(dialect: str, records: tuple[Any, Any, ColumnElement[bool]], steps: tuple[Any, Any, ColumnElement[bool]]
           ) -> tuple[Any, Any]:
    sign = bindparam("sign", type_=Integer)
    r, r_from, r_where = records
    o, o_from, o_where = steps
    d = _depths()
    deepest = max(ROLLUP_DEPTHS)
    units = [f"u{n}" for n in range(1, deepest + 1)]

    # Each record's measures once, summed by its units down to the deepest rollup (a CTE: computed once);
    # those are the deepest rollup's rows, and each shallower depth sums them again by its own units.
    measures = final_measures(r)
    # Constants written into the SQL, not bound: PostgreSQL matches GROUP BY expressions to the select list
    # only when they are the same text, and two bound parameters are two different texts.
    due_year = func.coalesce(extract("year", r.last_due_day), literal_column("0"))
    base_key = [*(func.coalesce(getattr(r, u), literal_column("''")) for u in units), r.received_day,
                r.final_policies, due_year]
    base = (
        select(*(k.label(n) for k, n in zip(base_key, [*units, "received_day", "policies", "due_year"],
                                            strict=True)),
               *(func.sum(measures[m]).label(m) for m in ROLLUP_MEASURES))
        .select_from(r_from)
        .where(r_where)
        .group_by(*base_key)
        .cte("facts")
    )

    def at_depth(depth: int) -> Any:
        units_at = [base.c[f"u{n}"] for n in range(1, depth + 1)]
        rest = [base.c.received_day, base.c.policies, base.c.due_year]
        keys = [literal_column(str(depth), Integer).label("depth"),
                *(u.label(u.name) for u in units_at),
                *(literal_column("''", String).label(f"u{n}") for n in range(depth + 1, 6)), *rest]
        if depth == deepest:  # the CTE's rows are already this depth's
            return select(*keys, *((sign * base.c[m]).label(m) for m in ROLLUP_MEASURES))
        return (select(*keys, *((sign * func.sum(base.c[m])).label(m) for m in ROLLUP_MEASURES))
                .group_by(*units_at, *rest))

    spread = union_all(*(at_depth(depth) for depth in ROLLUP_DEPTHS)).subquery("spread")
    key = ["depth", "u1", "u2", "u3", "u4", "u5", "received_day", "policies", "due_year"]
    # In key order, so that two writers updating the same rows lock them in the same order (no deadlock).
    grouped = select(*(spread.c[k] for k in key), *(spread.c[m] for m in ROLLUP_MEASURES)).order_by(
        *(spread.c[k] for k in key))
    rollup = _upsert(dialect, kpi_rollup, key, list(ROLLUP_MEASURES), grouped)

    open_inner = (
        select(d.c.depth, *_unit_keys(d.c.depth, o), o.received_day, o.due_day, o.obligation)
        .select_from(o_from)
        .join(d, true())
        .where(o.valid_to.is_(None), o.fulfilled_at.is_(None), o_where)
        .subquery("open_steps")
    )
    open_key = ["depth", "u1", "u2", "u3", "u4", "u5", "received_day", "due_day", "obligation"]
    open_grouped = (
        select(*(open_inner.c[k] for k in open_key), (sign * func.count()).label("open"))
        .where(true())
        .group_by(*(open_inner.c[k] for k in open_key))
        .order_by(*(open_inner.c[k] for k in open_key))
    )
    return rollup, _upsert(dialect, kpi_open_rollup, open_key, ["open"], open_grouped)


_MANY = 1000  # records at once from which a rollup update is a bulk load's


async def _apply(session: AsyncSession, ids: Sequence[str] | None, sign: int) -> None:
    """Add (sign 1) or subtract (sign -1) the final views of the records `ids` (None: every record)."""
    dialect = session.get_bind().dialect.name
    params: dict[str, Any] = {"sign": sign} | ({"ids": list(ids)} if ids is not None else {})
    if dialect == "postgresql" and ids is not None and len(ids) >= _MANY:
        # A bulk load's transaction (thousands of records) groups more rows than the default work_mem sorts
        # in memory: PostgreSQL spilled them to disk (15 % of the statement). This transaction only.
        await session.execute(text("SET LOCAL work_mem = '64MB'"))
    for statement in _statements(dialect, ids is not None):
        await session.execute(statement, params)


async def _apply_ids(session: AsyncSession, ids: Sequence[str], sign: int) -> None:
    unique = list(dict.fromkeys(ids))
    # All at once where the ids are one array parameter (PostgreSQL): a rollup row shared by records of the
    # batch is then updated once. SQLite binds each id: in slices under its parameter limit.
    size = len(unique) if session.get_bind().dialect.name == "postgresql" else 5000
    for start in range(0, len(unique), max(size, 1)):
        await _apply(session, unique[start:start + size], sign)


async def retract(session: AsyncSession, ids: Sequence[str]) -> None:
    """Subtract the stored facts of these records from the rollups: call BEFORE deleting or replacing them."""
    await _apply_ids(session, ids, -1)


async def add(session: AsyncSession, ids: Sequence[str]) -> None:
    """Add the stored facts of these records to the rollups: call AFTER inserting them."""
    await _apply_ids(session, ids, 1)


async def rebuild(session: AsyncSession) -> None:
    """Empty the rollups and add every record's facts again (after facts were rewritten wholesale)."""
    for table in (kpi_rollup, kpi_open_rollup):
        await session.execute(delete(table))
    if session.get_bind().dialect.name == "postgresql":
        # Group millions of rows in memory (hash) rather than by an external sort; this transaction only.
        await session.execute(text("SET LOCAL work_mem = '256MB'"))
    await _apply(session, None, 1)
