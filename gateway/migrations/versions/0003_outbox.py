"""Complaint flags, the delivery outbox and early-warning alerts.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

from gateway.core.db import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "complaint_flags",
        sa.Column("flag_id", sa.String(36), primary_key=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("uscc", sa.String(18), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("complaint_ids", sa.JSON, nullable=False),
        sa.Column("window_start", UTCDateTime, nullable=False),
        sa.Column("window_end", UTCDateTime, nullable=False),
        sa.Column("issued_by", sa.String(12), nullable=False),
        *(sa.Column(f"i{n}", sa.String(12), nullable=True) for n in range(1, 6)),
        sa.Column("issued_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("escalated_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_complaint_flags_uscc", "complaint_flags", ["uscc"])
    op.create_index("ix_complaint_flags_updated", "complaint_flags", ["updated_at", "flag_id"])

    op.create_table(
        "outbox",
        sa.Column("system", sa.String(16), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("first_attempt_at", UTCDateTime, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", UTCDateTime, nullable=True),
        sa.Column("delivered_at", UTCDateTime, nullable=True),
        sa.Column("receipt", sa.JSON, nullable=True),
        sa.PrimaryKeyConstraint("system", "key"),
    )
    op.create_index("ix_outbox_due", "outbox", ["state", "next_attempt_at"])

    op.create_table(
        "early_warnings",
        sa.Column("alert_id", sa.String(36), primary_key=True),
        sa.Column("unit_code", sa.String(12), nullable=False),
        *(sa.Column(f"a{n}", sa.String(12), nullable=True) for n in range(1, 4)),
        sa.Column("category", sa.String(24), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("baseline", sa.Float, nullable=False),
        sa.Column("threshold", sa.Integer, nullable=False),
        sa.Column("raised_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_early_warnings_day", "early_warnings", ["day"])
    op.create_index("ix_early_warnings_unit_day", "early_warnings", ["unit_code", "day"])


def downgrade() -> None:
    for table in ("early_warnings", "outbox", "complaint_flags"):
        op.drop_table(table)
