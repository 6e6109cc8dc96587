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

SCRIPTS = Path(__file__).with_name("migrations")
HEAD = "0005"  # the newest revision in SCRIPTS (a test keeps the two in step)
VERSION_TABLE = "sluice_ledger_version"
BASELINE = "0001"  # the schema Sluice wrote before it had migrations
_PG_LOCK = 0x511CE  # advisory lock key: one migrating process at a time


def current(connection: sa.Connection) -> str | None:
    """The ledger's revision; None for an empty database or one made before migrations."""
    if not sa.inspect(connection).has_table(VERSION_TABLE):
        return None
    return connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def upgrade(engine: sa.Engine) -> None:
    """Upgrade the ledger at ``engine`` to ``HEAD`` (only a version read when it is there)."""
    with engine.connect() as connection:
        if current(connection) == HEAD:
            return
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory(str(SCRIPTS))
    locked = engine.connect().execution_options(sqlite_begin="BEGIN IMMEDIATE")
    with locked as connection, connection.begin():
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
        context = MigrationContext.configure(
            connection,
            opts={
                "version_table": VERSION_TABLE,
                "script": scripts,
                "fn": lambda revision, _: scripts._upgrade_revs(HEAD, revision),
            },
        )
        if context.get_current_revision() is None and sa.inspect(connection).has_table("attempts"):
            context.stamp(scripts, BASELINE)
        with Operations.context(context):
            context.run_migrations()
