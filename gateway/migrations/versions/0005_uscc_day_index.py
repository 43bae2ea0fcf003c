"""Index for counting an enterprise's records in a month (the COMPLAINT_SURGE rule).

Revision ID: 0005
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_complaints_uscc_day", "complaints", ["respondent_uscc", "received_day"])


def downgrade() -> None:
    op.drop_index("ix_complaints_uscc_day", "complaints")
