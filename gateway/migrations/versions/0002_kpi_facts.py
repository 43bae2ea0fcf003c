"""KPI facts derived from records (kpi engine).

Revision ID: 0002
"""

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # filled by the issue that owns these tables


def downgrade() -> None:
    pass
