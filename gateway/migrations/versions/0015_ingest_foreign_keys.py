"""The foreign keys of the bulk-loaded tables dropped: `complaints.handling_unit` → `org_units`,
`complainants.complaint_id` and `events.complaint_id` → `complaints`.

Why: PostgreSQL checks a foreign key row by row, locking the referenced row (`FOR KEY SHARE`), and in a
bulk load that was most of the work: COPYing 40,000 realistic records took 191 µs per record with these
keys and 58 without (events 100 → 12, complainants 21 → 2, complaints 36 → 15; docs/ingest.md). What
they guarded is guaranteed where the rows are written: a record's handling unit is checked against the unit
tree by the one validator (and units are never deleted), and a record's events and complainant are only
written by the store (gateway/ingest/store.py), in the transaction that writes the record, which is never
deleted.

Revision ID: 0015
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# SQLite's foreign keys have no names: batch mode names them by this convention to drop them.
_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s"}
_KEYS = (  # table, column, referred table and column, its PostgreSQL name, ON DELETE
    ("complaints", "handling_unit", "org_units", "code", "complaints_handling_unit_fkey", None),
    ("complainants", "complaint_id", "complaints", "id", "complainants_complaint_id_fkey", "CASCADE"),
    ("events", "complaint_id", "complaints", "id", "events_complaint_id_fkey", "CASCADE"),
)


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table, column, _, _, pg_name, _ in _KEYS:
        name = pg_name if postgresql else f"fk_{table}_{column}"
        with op.batch_alter_table(table, naming_convention=_NAMES) as batch:
            batch.drop_constraint(name, type_="foreignkey")


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table, column, referred, referred_column, pg_name, ondelete in _KEYS:
        name = pg_name if postgresql else f"fk_{table}_{column}"
        with op.batch_alter_table(table) as batch:
            batch.create_foreign_key(name, referred, [column], [referred_column], ondelete=ondelete)
