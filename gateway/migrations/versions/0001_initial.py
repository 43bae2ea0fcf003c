"""Org units, complaint records, personal data, events, sync state.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

from gateway.core.db import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "org_units",
        sa.Column("code", sa.String(12), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("level", sa.SmallInteger, nullable=False),
        sa.Column("parent_code", sa.String(12), sa.ForeignKey("org_units.code"), nullable=True),
        *(sa.Column(f"l{n}", sa.String(12), nullable=True) for n in range(1, 6)),
    )
    op.create_index("ix_org_units_parent_code", "org_units", ["parent_code"])
    for n in range(1, 5):
        op.create_index(f"ix_org_units_l{n}", "org_units", [f"l{n}"])

    op.create_table(
        "complaints",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(24), nullable=False),
        sa.Column("hotline", sa.String(5), nullable=True),
        sa.Column("urgency", sa.String(8), nullable=False),
        sa.Column("category", sa.String(24), nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("received_day", sa.Date, nullable=False),
        sa.Column("handling_unit", sa.String(12), sa.ForeignKey("org_units.code"), nullable=False),
        *(sa.Column(f"u{n}", sa.String(12), nullable=True) for n in range(1, 6)),
        sa.Column("region_code", sa.String(6), nullable=True),
        sa.Column("respondent_uscc", sa.String(18), nullable=True),
        sa.Column("respondent_name", sa.String(500), nullable=True),
        sa.Column("real_name", sa.Boolean, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("amount_involved_cents", sa.BigInteger, nullable=True),
        sa.Column("recovered_amount_cents", sa.BigInteger, nullable=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_complaints_respondent_uscc", "complaints", ["respondent_uscc"])
    op.create_index("ix_complaints_received", "complaints", ["received_at"])
    op.create_index("ix_complaints_u2_day", "complaints", ["u2", "received_day"])
    op.create_index("ix_complaints_u3_day", "complaints", ["u3", "received_day"])
    op.create_index("ix_complaints_u4_day", "complaints", ["u4", "received_day"])
    op.create_index("ix_complaints_unit", "complaints", ["handling_unit"])

    op.create_table(
        "complainants",
        sa.Column(
            "complaint_id", sa.String(64), sa.ForeignKey("complaints.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("phone", sa.String(40), nullable=True),
    )

    op.create_table(
        "events",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column(
            "complaint_id", sa.String(64), sa.ForeignKey("complaints.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("type", sa.String(24), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("unit", sa.String(12), nullable=True),
        sa.Column("data", sa.JSON, nullable=False),
    )
    op.create_index("ix_events_complaint_seq", "events", ["complaint_id", "seq"])

    op.create_table(
        "sync_state",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    for table in ("sync_state", "events", "complainants", "complaints", "org_units"):
        op.drop_table(table)
