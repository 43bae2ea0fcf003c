"""The live feed's relay table (gateway/core/feed.py): alerts on their way to subscribers.

Revision ID: 0011
"""

import sqlalchemy as sa
from alembic import op

from gateway.core.db import UTCDateTime

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feed_alerts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("unit_code", sa.String(12), nullable=False),
        sa.Column("complaint_ids", sa.JSON, nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_index("ix_feed_alerts_at", "feed_alerts", ["at"])


def downgrade() -> None:
    op.drop_table("feed_alerts")
