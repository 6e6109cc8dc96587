"""The ledger's tables as they are at the newest migration (queries are built from these)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

metadata = sa.MetaData()


class Timestamp(sa.TypeDecorator):
    """A timezone-aware UTC time: ``timestamptz`` in PostgreSQL, ISO-8601 text in SQLite."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.Text())
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> object:
        if value is not None and dialect.name == "sqlite":
            return value.astimezone(UTC).isoformat()
        return value

    def process_result_value(self, value: object, dialect: Dialect) -> datetime | None:
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.astimezone(UTC) if isinstance(value, datetime) else None


#: Attempt ids: BIGSERIAL in PostgreSQL, the rowid (never reused) in SQLite.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("run", sa.Text, nullable=False),
    sa.Column("item", sa.Text, nullable=False),
    sa.Column("workload", sa.Text, nullable=False),
    sa.Column("job_name", sa.Text, nullable=False),
    sa.Column("tier", sa.Integer),
    sa.Column("memory_bytes", sa.BigInteger),
    sa.Column("outcome", sa.Text),
    sa.Column("exit_code", sa.Integer),
    sa.Column("reason", sa.Text),
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("finished_at", Timestamp),
    sa.Column("peak_memory_bytes", sa.BigInteger),
    sa.Column("message", sa.Text),
    sa.Column("runtime_started_at", Timestamp),  # the runtime's own start, if reported
    sa.Column("runtime_finished_at", Timestamp),  # and end
    sa.Column("log_tail", sa.Text),  # the end of a failed job's log, if the backend kept it
    sa.Index("attempts_run_item", "run", "item", "id"),
    sa.Index("attempts_workload", "workload", "outcome"),
    sqlite_autoincrement=True,
)

#: One row per run being worked on: who holds it, since when, until when.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("run", sa.Text, primary_key=True),
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("process_started_at", Timestamp, nullable=False),
    sa.Column("token", sa.Text, nullable=False),
    sa.Column("acquired_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
)
