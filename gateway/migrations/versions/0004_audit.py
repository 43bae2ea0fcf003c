"""Personal-data audit log; complaint-to-incident links; case leads and incident escalations.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

from gateway.core.db import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pii_audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("actor_unit", sa.String(12), nullable=False),
        sa.Column("complaint_id", sa.String(64), nullable=False),
        sa.Column("fields", sa.String(100), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
    )
    op.create_index("ix_pii_audit_log_at", "pii_audit_log", ["at"])
    op.create_index("ix_pii_audit_log_complaint", "pii_audit_log", ["complaint_id"])
    op.create_index("ix_pii_audit_log_actor", "pii_audit_log", ["actor"])

    op.create_table(
        "incident_links",
        sa.Column("complaint_id", sa.String(64), primary_key=True),
        sa.Column("incident_id", sa.String(64), primary_key=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_incident_links_incident", "incident_links", ["incident_id"])

    op.create_table(
        "case_leads",
        sa.Column("complaint_id", sa.String(64), primary_key=True),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("lead_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(32), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )

    op.create_table(
        "incident_escalations",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("incident_id", sa.String(64), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("incident_escalations")
    op.drop_table("case_leads")
    op.drop_table("incident_links")
    op.drop_table("pii_audit_log")
