"""The KPI tables: per-record facts (what `kpi.obligations.derive` says about each record) and the rollups
that add up the records' final views (docs/kpi.md, "Facts tables and the report").

Fact tables carry copies of the record's grouping columns (u1..u5, received_day, received_at) so that a
report filters and groups on one table with no join:

- `kpi_record_facts`: one row per record: volumes, the instants behind the rates, and the record's final view;
- `kpi_obligation_facts`: one row per (record, obligation, step): the due date that applies while `as_of` is
  in [valid_from, valid_to), the fulfilling instant and whether it was on time;
- `kpi_callback_facts`: one row per (record, step): the latest CALLBACK's satisfaction while `as_of` is in
  [valid_from, valid_to).

Rollups (kept by `gateway.reports.rollups` in the transaction that stores the facts):

- `kpi_rollup`: the sum of the final views of the records of one (depth, u1..u_depth, received_day, policy
  set, year of the latest due date); unit columns below the depth hold '' (as do missing ancestors), so the
  key has no NULL;
- `kpi_open_rollup`: how many obligations no known event fulfils, by (depth, u1..u_depth, received_day,
  due_day, obligation): a report subtracts those not yet due at `as_of` (PENDING, not OVERDUE).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, Date, Index, Integer, SmallInteger, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from gateway.core.db import UTCDateTime
from gateway.core.models import Base
from kpi.metrics import CHANNELS, HOTLINES, KINDS
from kpi.policies import OBLIGATIONS


class _Grouping:
    """The record's columns a report filters and groups on, copied into every facts row."""

    complaint_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    u1: Mapped[str | None] = mapped_column(String(12))
    u2: Mapped[str | None] = mapped_column(String(12))
    u3: Mapped[str | None] = mapped_column(String(12))
    u4: Mapped[str | None] = mapped_column(String(12))
    u5: Mapped[str | None] = mapped_column(String(12))
    received_day: Mapped[date] = mapped_column(Date)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


    @classmethod
    def ancestor_columns(cls) -> tuple[Any, ...]:
        """`u1`..`u5`, for `gateway.units.jurisdiction.Jurisdiction.condition`."""
        return (cls.u1, cls.u2, cls.u3, cls.u4, cls.u5)


def _grouping_indexes(table: str) -> tuple[Index, ...]:
    return tuple(Index(f"ix_{table}_u{n}_day", f"u{n}", "received_day") for n in (2, 3, 4))


class KpiRecordFact(_Grouping, Base):
    __tablename__ = "kpi_record_facts"

    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(24))
    hotline: Mapped[str | None] = mapped_column(String(5))
    recovered_cents: Mapped[int] = mapped_column(BigInteger)
    reply_owed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    concluded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_callback_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    mediation_outcome_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    mediation_succeeded: Mapped[bool] = mapped_column(Boolean)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    case_filed: Mapped[bool] = mapped_column(Boolean)
    # The record's final view (kpi.obligations.FinalView), what the rollups add up:
    last_change_at: Mapped[datetime] = mapped_column(UTCDateTime)  # no fact changes after it, only due dates pass
    open_due_day: Mapped[date | None] = mapped_column(Date)  # earliest due date of an obligation no event fulfils
    last_due_day: Mapped[date | None] = mapped_column(Date)  # latest due date of the obligations' last steps
    final_policies: Mapped[str] = mapped_column(String(200))  # JSON list of the last steps' policy versions
    final_satisfaction: Mapped[str | None] = mapped_column(String(24))  # the latest CALLBACK's
    final_c_accept: Mapped[str | None] = mapped_column(String(8))  # ON_TIME, LATE, OVERDUE (unfulfilled), null
    final_c_conclude: Mapped[str | None] = mapped_column(String(8))
    final_r_decide: Mapped[str | None] = mapped_column(String(8))
    final_r_reply: Mapped[str | None] = mapped_column(String(8))

    __table_args__ = (
        *_grouping_indexes("kpi_record_facts"),
        Index("ix_kpi_record_facts_last_change", "last_change_at"),
    )


class KpiObligationFact(_Grouping, Base):
    __tablename__ = "kpi_obligation_facts"

    obligation: Mapped[str] = mapped_column(String(12), primary_key=True)
    step: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    policy: Mapped[str] = mapped_column(String(32))
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_to: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_day: Mapped[date] = mapped_column(Date)
    fulfilled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    on_time: Mapped[bool] = mapped_column(Boolean)

    __table_args__ = _grouping_indexes("kpi_obligation_facts")


class KpiCallbackFact(_Grouping, Base):
    __tablename__ = "kpi_callback_facts"

    step: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_to: Mapped[datetime | None] = mapped_column(UTCDateTime)
    satisfaction: Mapped[str] = mapped_column(String(24))

    __table_args__ = _grouping_indexes("kpi_callback_facts")



RECORD_FACT_MODELS = (KpiRecordFact, KpiObligationFact, KpiCallbackFact)  # one or more rows per record

# ------------------------------------------------------------------------------------------------ rollups

# Report rows at these levels (provinces, cities) are read from rollups; those of counties and stations from
# the facts of the records below the unit (few: a city's, a county's), where a rollup by unit and day would
# hold about one row per record, costing more to keep than it saves.
ROLLUP_DEPTHS = (2, 3)
STATES = ("on_time", "late", "overdue")
# The additive measures of a rollup row, in the order of kpi.metrics.RowCounts.
ROLLUP_MEASURES: tuple[str, ...] = (
    "records",
    *(f"kind_{k.lower()}" for k in KINDS),
    *(f"channel_{c.lower()}" for c in CHANNELS),
    *(f"hotline_{h}" for h in HOTLINES),
    "reply_owed", "replied", "concluded", "called_back", "mediation_outcomes", "mediation_succeeded",
    "decided", "case_filed", "callback_reachable", "satisfied", "recovered_cents",
    *(f"{code.lower()}_{state}" for code in OBLIGATIONS for state in STATES),
)


def _unit_key() -> list[Column[str]]:
    return [Column(f"u{n}", String(12), primary_key=True) for n in range(1, 6)]


kpi_rollup = Table(
    "kpi_rollup",
    Base.metadata,
    Column("depth", SmallInteger, primary_key=True, autoincrement=False),
    *_unit_key(),
    Column("received_day", Date, primary_key=True),
    Column("policies", String(200), primary_key=True),
    Column("due_year", SmallInteger, primary_key=True, autoincrement=False),
    *(Column(m, BigInteger if m == "recovered_cents" else Integer, nullable=False) for m in ROLLUP_MEASURES),
)

kpi_open_rollup = Table(
    "kpi_open_rollup",
    Base.metadata,
    Column("depth", SmallInteger, primary_key=True, autoincrement=False),
    *_unit_key(),
    Column("received_day", Date, primary_key=True),
    Column("due_day", Date, primary_key=True),
    Column("obligation", String(12), primary_key=True),
    Column("open", Integer, nullable=False),
)

ROLLUP_TABLES = (kpi_rollup, kpi_open_rollup)
# Every table derived from the records for reports: emptying these (and the facts fingerprint in sync_state,
# or not) leaves nothing stale behind.
FACT_MODELS: tuple[Any, ...] = (*RECORD_FACT_MODELS, *ROLLUP_TABLES)
