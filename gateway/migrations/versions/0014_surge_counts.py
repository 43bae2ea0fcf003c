"""Surge counts per enterprise and month (`surge_counts`), filled from the stored records; and the index on
`complaints.respondent_uscc` dropped: `ix_complaints_uscc_day` (respondent_uscc, received_day) serves every
lookup it served, and each index costs every insert.

Revision ID: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "surge_counts",
        sa.Column("uscc", sa.String(18), primary_key=True),
        sa.Column("month", sa.String(7), primary_key=True),
        sa.Column("records", sa.Integer, nullable=False),
    )
    bind = op.get_bind()
    month = ("to_char(received_day, 'YYYY-MM')" if bind.dialect.name == "postgresql"
             else "strftime('%Y-%m', received_day)")
    op.execute(
        f"INSERT INTO surge_counts (uscc, month, records) SELECT respondent_uscc, {month}, count(*) FROM complaints"
        " WHERE respondent_uscc IS NOT NULL AND kind IN ('COMPLAINT', 'REPORT') GROUP BY 1, 2"
    )
    op.drop_index("ix_complaints_respondent_uscc", table_name="complaints")


def downgrade() -> None:
    op.create_index("ix_complaints_respondent_uscc", "complaints", ["respondent_uscc"])
    op.drop_table("surge_counts")
