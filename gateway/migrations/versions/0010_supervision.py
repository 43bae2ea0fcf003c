"""Supervision orders (督办单), the records they are about, and the responses to them (supervision.md).

Revision ID: 0010
"""

import sqlalchemy as sa
from alembic import op

from gateway.core.db import UTCDateTime

revision = "0010"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "supervision_orders",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("issued_by", sa.String(12), sa.ForeignKey("org_units.code"), nullable=False),
        sa.Column("issued_by_sub", sa.String(200), nullable=False),
        sa.Column("issued_at", UTCDateTime, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("respond_within", sa.SmallInteger, nullable=False),
        sa.Column("due_day", sa.Date, nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("first_response_at", UTCDateTime, nullable=True),
        sa.Column("first_response_on_time", sa.Boolean, nullable=True),
        sa.UniqueConstraint("issued_by", "idempotency_key", name="uq_supervision_orders_key"),
    )
    op.create_index("ix_supervision_orders_issuer_at", "supervision_orders", ["issued_by", "issued_at"])
    op.create_index("ix_supervision_orders_issued_at", "supervision_orders", ["issued_at"])

    op.create_table(
        "supervision_order_records",
        sa.Column("order_id", sa.String(36), sa.ForeignKey("supervision_orders.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("complaint_id", sa.String(64), sa.ForeignKey("complaints.id"), primary_key=True),
    )
    op.create_index("ix_supervision_order_records_complaint", "supervision_order_records", ["complaint_id"])

    op.create_table(
        "supervision_responses",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.String(36), sa.ForeignKey("supervision_orders.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("unit", sa.String(12), sa.ForeignKey("org_units.code"), nullable=False),
        sa.Column("sub", sa.String(200), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
    )
    op.create_index("ix_supervision_responses_order", "supervision_responses", ["order_id", "at"])


def downgrade() -> None:
    op.drop_table("supervision_responses")
    op.drop_table("supervision_order_records")
    op.drop_table("supervision_orders")
