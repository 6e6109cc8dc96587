"""The ledger's schema is versioned: a ledger written by an older Sluice is upgraded on open."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime

import psycopg
import sqlalchemy as sa

from sluice.jobs import Outcome
from sluice.ledger import migrate, open_ledger
from tests.core.test_ledger import ledger_url, planned, postgres_server  # noqa: F401 - fixtures

# The schema exactly as Sluice created it before the ledger had migrations.
TODAYS_SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    id {id_type},
    run TEXT NOT NULL,
    item TEXT NOT NULL,
    workload TEXT NOT NULL,
    job_name TEXT NOT NULL,
    tier INTEGER,
    memory_bytes BIGINT,
    outcome TEXT,
    exit_code INTEGER,
    reason TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    peak_memory_bytes BIGINT,
    message TEXT
);
CREATE INDEX IF NOT EXISTS attempts_run_item ON attempts (run, item, id);
CREATE INDEX IF NOT EXISTS attempts_workload ON attempts (workload, outcome)
"""

START = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
END = datetime(2026, 3, 1, 12, 5, 0, tzinfo=UTC)
OLD_ROWS = [
    ("sweep/a", "0", "wl", "job-0-t0", 0, 2**30, "succeeded", 0, None, START, END, 5, None),
    ("sweep/a", "1", "wl", "job-1-t0", 0, 2**30, "oom", 137, "oom", START, END, 2**30, None),
    ("sweep/a", "1", "wl", "job-1-t1", 1, 2**31, None, None, None, START, None, None, None),
    ("stac/b", "x", "stac", "stac-x", None, None, "failed", 3, "exit:3", START, END, None, "boom"),
]
INSERT = (
    "INSERT INTO attempts (run, item, workload, job_name, tier, memory_bytes, outcome, exit_code,"
    " reason, started_at, finished_at, peak_memory_bytes, message)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _old_row(row: tuple) -> tuple:
    """A row as the old code wrote it: times as ISO-8601 text."""
    return tuple(v.isoformat() if isinstance(v, datetime) else v for v in row)


def make_todays_ledger(url: str) -> None:
    """Write a ledger with the pre-migration schema and code, as an existing user has one."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            db.executescript(TODAYS_SCHEMA.format(id_type="INTEGER PRIMARY KEY AUTOINCREMENT"))
            db.executemany(INSERT, map(_old_row, OLD_ROWS))
        return
    with psycopg.connect(url) as db:
        for statement in TODAYS_SCHEMA.format(id_type="BIGSERIAL PRIMARY KEY").split(";"):
            db.execute(statement)
        db.cursor().executemany(INSERT.replace("?", "%s"), map(_old_row, OLD_ROWS))


def revision(url: str) -> str | None:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as connection:
            return migrate.current(connection)
    finally:
        engine.dispose()


def test_a_ledger_from_before_migrations_is_upgraded_and_keeps_every_attempt(
    ledger_url: str,  # noqa: F811 - the fixture
) -> None:
    make_todays_ledger(ledger_url)
    assert revision(ledger_url) is None
    ledger = open_ledger(ledger_url)
    try:
        found = ledger.attempts("sweep/a") + ledger.attempts("stac/b")
        assert [(a.run, a.item, a.job_name) for a in found] == [
            (r[0], r[1], r[3]) for r in OLD_ROWS
        ]
        assert [a.outcome for a in found] == [Outcome.SUCCEEDED, Outcome.OOM, None, Outcome.FAILED]
        assert all(a.started_at == START for a in found)
        assert [a.finished_at for a in found] == [END, END, None, END]
        assert found[1].peak_memory_bytes == 2**30 and found[3].message == "boom"
        assert ledger.latest("sweep/a")["1"].running and ledger.latest("sweep/a")["1"].tier == 1
        assert ledger.lowest_succeeded_tiers("wl") == {"0": 0}
        (new,) = ledger.begin("sweep/a", "wl", planned("2"))
        assert new > max(a.id for a in found)
    finally:
        ledger.close()
    assert revision(ledger_url) == migrate.HEAD


def test_postgres_times_become_timestamptz(postgres_server: str) -> None:  # noqa: F811
    url = f"{postgres_server}/upgraded_times"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as db:
        db.execute("CREATE DATABASE upgraded_times")
    make_todays_ledger(url)
    open_ledger(url).close()
    with psycopg.connect(url) as db:
        types = db.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_name = 'attempts' AND column_name LIKE '%%_at' ORDER BY column_name"
        ).fetchall()
        assert set(types) >= {
            ("finished_at", "timestamp with time zone"),
            ("started_at", "timestamp with time zone"),
        }
        assert db.execute("SELECT min(started_at) FROM attempts").fetchone()[0] == START


def test_two_processes_opening_an_old_ledger_at_once_upgrade_it_once(
    ledger_url: str,  # noqa: F811 - the fixture
) -> None:
    make_todays_ledger(ledger_url)
    start = threading.Barrier(2)
    opened, errors = [], []

    def open_it() -> None:
        start.wait()
        try:
            opened.append(open_ledger(ledger_url))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    try:
        assert [len(ledger.attempts("sweep/a")) for ledger in opened] == [3, 3]
    finally:
        for ledger in opened:
            ledger.close()
    assert revision(ledger_url) == migrate.HEAD


def test_a_new_ledger_starts_at_the_newest_revision(ledger_url: str) -> None:  # noqa: F811
    open_ledger(ledger_url).close()
    assert revision(ledger_url) == migrate.HEAD


def test_the_upgraded_schema_is_the_one_queries_are_built_from(ledger_url: str) -> None:  # noqa: F811
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from sluice.ledger.schema import metadata

    open_ledger(ledger_url).close()
    engine = sa.create_engine(ledger_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as connection:
            drift = compare_metadata(MigrationContext.configure(connection), metadata)
    finally:
        engine.dispose()
    assert [d for d in drift if migrate.VERSION_TABLE not in str(d)] == []


def test_head_is_the_newest_migration_shipped() -> None:
    from alembic.script import ScriptDirectory

    assert ScriptDirectory(str(migrate.SCRIPTS)).get_current_head() == migrate.HEAD
