"""The record's own version: its `updated_at` as the complaint platform sent it (records.md 1.1).

Revision ID: 0007
"""

import sqlalchemy as sa
from alembic import op

from gateway.core.db import UTCDateTime

revision = "0007"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("complaints", sa.Column("record_updated_at", UTCDateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("complaints") as batch:
        batch.drop_column("record_updated_at")
