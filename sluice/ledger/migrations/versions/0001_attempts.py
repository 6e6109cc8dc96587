"""The attempts table as Sluice wrote it before migrations (timestamps as ISO text).

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# (name, type, nullable) after the id, in the order the pre-migration DDL had them.
COLUMNS = [
    ("run", sa.Text, False),
    ("item", sa.Text, False),
    ("workload", sa.Text, False),
    ("job_name", sa.Text, False),
    ("tier", sa.Integer, True),
    ("memory_bytes", sa.BigInteger, True),
    ("outcome", sa.Text, True),
    ("exit_code", sa.Integer, True),
    ("reason", sa.Text, True),
    ("started_at", sa.Text, False),
    ("finished_at", sa.Text, True),
    ("peak_memory_bytes", sa.BigInteger, True),
    ("message", sa.Text, True),
]


def upgrade() -> None:
    op.create_table(
        "attempts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        *(sa.Column(name, kind, nullable=nullable) for name, kind, nullable in COLUMNS),
        sqlite_autoincrement=True,
    )
    op.create_index("attempts_run_item", "attempts", ["run", "item", "id"])
    op.create_index("attempts_workload", "attempts", ["workload", "outcome"])


def downgrade() -> None:
    op.drop_table("attempts")
