"""Run leases: one live process per run.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from sluice.ledger.schema import Timestamp

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


# (name, type) after the run, all NOT NULL.
COLUMNS = [
    ("host", sa.Text),
    ("pid", sa.Integer),
    ("process_started_at", Timestamp),
    ("token", sa.Text),
    ("acquired_at", Timestamp),
    ("expires_at", Timestamp),
]


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("run", sa.Text, primary_key=True),
        *(sa.Column(name, kind, nullable=False) for name, kind in COLUMNS),
    )


def downgrade() -> None:
    op.drop_table("leases")
