"""Personal-data audit log.

Revision ID: 0004
"""

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # filled by the issue that owns these tables


def downgrade() -> None:
    pass
