"""The KPI facts tables (what `gateway.reports.facts` derives; the design is in docs/kpi.md).

Each row carries copies of its record's grouping columns (`u1`..`u5`, `received_day`, `received_at`), so
that a report filters and groups on one table with no join:

- `kpi_record_facts`: one row per record: volumes and the instants behind the rates;
- `kpi_obligation_facts`: one row per (record, obligation, step): the due date valid in [valid_from, valid_to);
- `kpi_callback_facts`: one row per (record, step): the latest CALLBACK's satisfaction in [valid_from, valid_to).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, Index, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.core.db import UTCDateTime
from gateway.core.models import Base


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

    __table_args__ = _grouping_indexes("kpi_record_facts")


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


FACT_MODELS = (KpiRecordFact, KpiObligationFact, KpiCallbackFact)
