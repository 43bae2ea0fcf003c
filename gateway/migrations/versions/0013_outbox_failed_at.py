"""When a delivery was refused for good: `outbox.failed_at`, for `gateway dispatch --failed` (dead letters).

Revision ID: 0013
"""

import sqlalchemy as sa
from alembic import op

from gateway.core.db import UTCDateTime

revision = "0013"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("failed_at", UTCDateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("failed_at")
