"""KPI facts derived from records (kpi engine): record, obligation-step and callback-step facts.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

from gateway.core.db import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("kpi_record_facts", "kpi_obligation_facts", "kpi_callback_facts")


def _grouping() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("complaint_id", sa.String(64), primary_key=True),
        *(sa.Column(f"u{n}", sa.String(12), nullable=True) for n in range(1, 6)),
        sa.Column("received_day", sa.Date, nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "kpi_record_facts",
        *_grouping(),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(24), nullable=False),
        sa.Column("hotline", sa.String(5), nullable=True),
        sa.Column("recovered_cents", sa.BigInteger, nullable=False),
        sa.Column("reply_owed_at", UTCDateTime, nullable=True),
        sa.Column("replied_at", UTCDateTime, nullable=True),
        sa.Column("concluded_at", UTCDateTime, nullable=True),
        sa.Column("first_callback_at", UTCDateTime, nullable=True),
        sa.Column("mediation_outcome_at", UTCDateTime, nullable=True),
        sa.Column("mediation_succeeded", sa.Boolean, nullable=False),
        sa.Column("decided_at", UTCDateTime, nullable=True),
        sa.Column("case_filed", sa.Boolean, nullable=False),
    )
    op.create_table(
        "kpi_obligation_facts",
        *_grouping(),
        sa.Column("obligation", sa.String(12), primary_key=True),
        sa.Column("step", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("policy", sa.String(32), nullable=False),
        sa.Column("valid_from", UTCDateTime, nullable=False),
        sa.Column("valid_to", UTCDateTime, nullable=True),
        sa.Column("due_day", sa.Date, nullable=False),
        sa.Column("fulfilled_at", UTCDateTime, nullable=True),
        sa.Column("on_time", sa.Boolean, nullable=False),
    )
    op.create_table(
        "kpi_callback_facts",
        *_grouping(),
        sa.Column("step", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("valid_from", UTCDateTime, nullable=False),
        sa.Column("valid_to", UTCDateTime, nullable=True),
        sa.Column("satisfaction", sa.String(24), nullable=False),
    )
    for table in TABLES:
        for n in (2, 3, 4):
            op.create_index(f"ix_{table}_u{n}_day", table, [f"u{n}", "received_day"])


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
