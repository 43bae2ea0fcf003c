"""Complaint flags and the delivery outbox.

Revision ID: 0003
"""

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # filled by the issue that owns these tables


def downgrade() -> None:
    pass
