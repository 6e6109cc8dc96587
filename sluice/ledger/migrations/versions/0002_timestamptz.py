"""PostgreSQL: attempt times become ``timestamptz`` (SQLite keeps ISO-8601 text).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = ("started_at", "finished_at")


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for column in COLUMNS:
            op.execute(
                f"ALTER TABLE attempts ALTER COLUMN {column} TYPE timestamptz"
                f" USING {column}::timestamptz"
            )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for column in COLUMNS:
            op.execute(f"ALTER TABLE attempts ALTER COLUMN {column} TYPE text")
