"""The runtime's own start and end of each attempt (process start, pod startTime, Nomad task
start), as the backend reported them; GiB-hours are charged from these.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from sluice.ledger.schema import Timestamp

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = ("runtime_started_at", "runtime_finished_at")


def upgrade() -> None:
    with op.batch_alter_table("attempts") as table:
        for column in COLUMNS:
            table.add_column(sa.Column(column, Timestamp))


def downgrade() -> None:
    with op.batch_alter_table("attempts") as table:
        for column in COLUMNS:
            table.drop_column(column)
