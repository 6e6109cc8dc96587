"""The end of a failed attempt's log, kept where it lasts (its pod's log goes with the pod).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as table:
        table.add_column(sa.Column("log_tail", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("attempts") as table:
        table.drop_column("log_tail")
