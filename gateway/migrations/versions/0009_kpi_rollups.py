"""KPI rollups: each record's final view on kpi_record_facts, and the tables that add them up by unit and day.

The facts are derived data: they are emptied here and derived again on first use (the facts fingerprint in
sync_state is dropped), so that every record gets its final view and the rollups are built from them.

Revision ID: 0009
"""

import sqlalchemy as sa
from alembic import op

from gateway.core.db import UTCDateTime

revision = "0009"
down_revision = "0013"
branch_labels = None
depends_on = None

FACTS = ("kpi_record_facts", "kpi_obligation_facts", "kpi_callback_facts")
OBLIGATIONS = ("C_ACCEPT", "C_CONCLUDE", "R_DECIDE", "R_REPLY")
KINDS = ("COMPLAINT", "REPORT", "INQUIRY", "SUGGESTION")
CHANNELS = ("HOTLINE", "WEB", "WECHAT", "APP", "MINI_PROGRAM", "SMS", "LETTER", "VISIT", "GOV_HOTLINE_TRANSFER",
            "OTHER_TRANSFER")
HOTLINES = ("12315", "12365", "12331", "12358", "12330")
MEASURES = (
    "records",
    *(f"kind_{k.lower()}" for k in KINDS),
    *(f"channel_{c.lower()}" for c in CHANNELS),
    *(f"hotline_{h}" for h in HOTLINES),
    "reply_owed", "replied", "concluded", "called_back", "mediation_outcomes", "mediation_succeeded",
    "decided", "case_filed", "callback_reachable", "satisfied", "recovered_cents",
    *(f"{code.lower()}_{state}" for code in OBLIGATIONS for state in ("on_time", "late", "overdue")),
)


def _empty_facts() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in FACTS:
        op.execute(f"TRUNCATE {table}" if postgres else f"DELETE FROM {table}")
    op.execute("DELETE FROM sync_state WHERE name = 'kpi.facts_config'")


def _units() -> list[sa.Column]:  # type: ignore[type-arg]
    return [sa.Column(f"u{n}", sa.String(12), primary_key=True) for n in range(1, 6)]


def upgrade() -> None:
    _empty_facts()
    with op.batch_alter_table("kpi_record_facts") as batch:
        batch.add_column(sa.Column("last_change_at", UTCDateTime, nullable=False))
        batch.add_column(sa.Column("open_due_day", sa.Date, nullable=True))
        batch.add_column(sa.Column("last_due_day", sa.Date, nullable=True))
        batch.add_column(sa.Column("final_policies", sa.String(200), nullable=False))
        batch.add_column(sa.Column("final_satisfaction", sa.String(24), nullable=True))
        for code in OBLIGATIONS:
            batch.add_column(sa.Column(f"final_{code.lower()}", sa.String(8), nullable=True))
    op.create_index("ix_kpi_record_facts_last_change", "kpi_record_facts", ["last_change_at"])
    op.create_table(
        "kpi_rollup",
        sa.Column("depth", sa.SmallInteger, primary_key=True, autoincrement=False),
        *_units(),
        sa.Column("received_day", sa.Date, primary_key=True),
        sa.Column("policies", sa.String(200), primary_key=True),
        sa.Column("due_year", sa.SmallInteger, primary_key=True, autoincrement=False),
        *(sa.Column(m, sa.BigInteger if m == "recovered_cents" else sa.Integer, nullable=False) for m in MEASURES),
    )
    op.create_table(
        "kpi_open_rollup",
        sa.Column("depth", sa.SmallInteger, primary_key=True, autoincrement=False),
        *_units(),
        sa.Column("received_day", sa.Date, primary_key=True),
        sa.Column("due_day", sa.Date, primary_key=True),
        sa.Column("obligation", sa.String(12), primary_key=True),
        sa.Column("open", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("kpi_open_rollup")
    op.drop_table("kpi_rollup")
    _empty_facts()
    op.drop_index("ix_kpi_record_facts_last_change", "kpi_record_facts")
    with op.batch_alter_table("kpi_record_facts") as batch:
        for name in ("last_change_at", "open_due_day", "last_due_day", "final_policies", "final_satisfaction",
                     *(f"final_{code.lower()}" for code in OBLIGATIONS)):
            batch.drop_column(name)
