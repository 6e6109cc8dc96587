"""Bring a ledger's schema to the newest Alembic revision, once, whoever opens it first.

Runs on every open. The fast path only reads the version; an upgrade runs in one
transaction under a lock (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock),
so two processes opening an old ledger at once upgrade it exactly once. A ledger
made before migrations existed (an ``attempts`` table and no version) is the first
revision and is upgraded from there.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

VERSION_TABLE = "sluice_ledger_version"
BASELINE = "0001"  # the schema Sluice wrote before it had migrations
_PG_LOCK = 0x511CE  # advisory lock key: one migrating process at a time

_scripts = ScriptDirectory(str(Path(__file__).with_name("migrations")))


def head() -> str:
    """The newest revision shipped with this Sluice."""
    return _scripts.get_current_head()


def current(connection: sa.Connection) -> str | None:
    """The ledger's revision; None for an empty database or one made before migrations."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def upgrade(engine: sa.Engine) -> None:
    """Upgrade the ledger at ``engine`` to :func:`head` (a no-op when it is there already)."""
    with engine.connect() as connection:
        if current(connection) == head():
            return
    locked = engine.connect().execution_options(sqlite_begin="BEGIN IMMEDIATE")
    with locked as connection, connection.begin():
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
        context = MigrationContext.configure(
            connection,
            opts={
                "version_table": VERSION_TABLE,
                "script": _scripts,
                "fn": lambda revision, _: _scripts._upgrade_revs("head", revision),
            },
        )
        if context.get_current_revision() is None and sa.inspect(connection).has_table("attempts"):
            context.stamp(_scripts, BASELINE)
        with Operations.context(context):
            context.run_migrations()
