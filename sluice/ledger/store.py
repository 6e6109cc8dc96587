"""The ledger on SQLAlchemy Core: one implementation for SQLite (WAL) and PostgreSQL.

SQLite is the embedded default; PostgreSQL is for flows that run in a cluster,
where local disk is not durable, and for many runs sharing one ledger. The
dialects differ only in how a connection is set up (``_engine``).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite

from sluice.errors import BackendUnavailable
from sluice.jobs import JobResult, Outcome
from sluice.ledger import migrate
from sluice.ledger.base import Attempt, Holder, PlannedAttempt, RunLeased
from sluice.ledger.schema import attempts as table
from sluice.ledger.schema import leases

T = TypeVar("T")
_ITEMS_PER_QUERY = 10_000  # below SQLite's and PostgreSQL's bound-parameter limits
_c = table.c

_FINISH = (
    table.update()
    .where(_c.id == sa.bindparam("attempt_id"))
    .values(
        {
            name: sa.bindparam(name)
            for name in (
                "outcome",
                "exit_code",
                "reason",
                "finished_at",
                "peak_memory_bytes",
                "message",
                "runtime_started_at",
                "runtime_finished_at",
                "log_tail",
            )
        }
    )
)
#: An attempt's columns: all but its kept log (read alone, by ``kept_log``).
_ATTEMPT = sa.select(*(c for c in table.c if c.name != "log_tail"))


class SqlLedger:
    """A ledger in a SQL database, safe to share between threads of one process.

    A lost PostgreSQL connection (server restart, network blip) is reopened and the
    transaction retried once. Retrying is harmless here: updates and deletes are
    idempotent, and the one insert that might have committed unseen only adds a
    duplicate "running" attempt of the same job name, which a resumed run adopts.
    """

    def __init__(self, url: sa.URL) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._queue_lock = threading.Lock()  # endings waiting for the next group commit
        self._commit_lock = threading.Lock()  # held by the thread committing a group
        self._queued: list[dict] = []
        self._enqueued = self._committed = 0  # endings ever queued / committed
        try:
            self._engine = _engine(url)
            migrate.upgrade(self._engine)
        except (sa.exc.OperationalError, OSError) as exc:
            cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig else exc
            raise BackendUnavailable(
                f"ledger database {_redact(url)} is unreachable: {_first_line(cause)}"
            ) from None

    def _transaction(self, work: Callable[[sa.Connection], T]) -> T:
        """``work(connection)`` in one transaction, retried once if the connection died."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    with self._engine.begin() as connection:
                        return work(connection)
                except sa.exc.DBAPIError as exc:
                    if attempt == 2 or not exc.connection_invalidated:
                        raise
        raise AssertionError("unreachable")

    def begin(self, run: str, workload: str, planned: Sequence[PlannedAttempt]) -> list[int]:
        if not planned:
            return []
        now = datetime.now(UTC)
        rows = [
            {
                "run": run,
                "item": p.item,
                "workload": workload,
                "job_name": p.job_name,
                "tier": p.tier,
                "memory_bytes": p.memory_bytes,
                "started_at": now,
            }
            for p in planned
        ]
        insert = table.insert().returning(_c.id, sort_by_parameter_order=True)
        return self._transaction(lambda db: list(db.execute(insert, rows).scalars()))

    def finish(self, attempt_id: int, result: JobResult) -> None:
        self.finish_many([(attempt_id, result)])

    def finish_many(self, ended: Sequence[tuple[int, JobResult]]) -> None:
        """Group commit: endings from threads that call at once share one transaction.

        Each call returns only once its own endings are committed: the first
        caller to get the commit lock writes everything queued so far, and a
        caller whose endings were written by it has nothing left to do.
        """
        if not ended:
            return
        with self._queue_lock:
            self._queued += [_finish_params(i, r) for i, r in ended]
            self._enqueued += len(ended)
            mine = self._enqueued
        with self._commit_lock:
            if self._committed >= mine:
                return
            with self._queue_lock:
                group, self._queued = self._queued, []
                upto = self._enqueued
            try:
                self._transaction(lambda db: db.execute(_FINISH, group))
            except BaseException:
                with self._queue_lock:
                    self._queued[:0] = group  # the next committer retries them
                raise
            self._committed = upto

    def attempts(self, run: str, items: Iterable[str] | None = None) -> list[Attempt]:
        found = [
            _attempt(row)
            for where in of_run(run, items)
            for row in self._rows(_ATTEMPT.where(*where).order_by(_c.id))
        ]
        return sorted(found, key=lambda a: a.id) if items is not None else found

    def latest(self, run: str, items: Iterable[str] | None = None) -> dict[str, Attempt]:
        latest: dict[str, Attempt] = {}
        for where in of_run(run, items):
            newest = sa.select(sa.func.max(_c.id)).where(*where).group_by(_c.item)
            for row in self._rows(_ATTEMPT.where(_c.id.in_(newest))):
                latest[row.item] = _attempt(row)
        return latest

    def last_id(self, run: str) -> int:
        query = sa.select(sa.func.coalesce(sa.func.max(_c.id), 0)).where(_c.run == run)
        return self._transaction(lambda db: db.execute(query).scalar_one())

    def kept_log(self, attempt_id: int) -> str | None:
        query = sa.select(_c.log_tail).where(_c.id == attempt_id)
        return self._transaction(lambda db: db.execute(query).scalar())

    def lowest_succeeded_tiers(self, workload: str) -> dict[str, int]:
        query = (
            sa.select(_c.item, sa.func.min(_c.tier))
            .where(_c.workload == workload, _c.outcome == "succeeded", _c.tier.is_not(None))
            .group_by(_c.item)
        )
        return {item: tier for item, tier in self._rows(query)}

    def forget(self, run: str, items: Iterable[str] | None = None) -> int:
        def delete(where: tuple[sa.ColumnElement, ...]) -> int:
            return self._transaction(lambda db: db.execute(table.delete().where(*where)).rowcount)

        return sum(delete(where) for where in of_run(run, items))

    def runs(self) -> list[str]:
        query = sa.select(_c.run).distinct().order_by(_c.run)
        return [run for (run,) in self._rows(query)]

    def acquire(self, run: str, holder: Holder, ttl: float) -> None:
        now = datetime.now(UTC)
        mine = {"run": run, **holder.model_dump(), "acquired_at": now}
        mine["expires_at"] = now + timedelta(seconds=ttl)
        insert = (
            _UPSERT[self._engine.dialect.name](leases)
            .values(mine)
            .on_conflict_do_nothing(index_elements=["run"])
            .returning(leases.c.run)
        )
        by_run = sa.select(leases).where(leases.c.run == run)

        def take(db: sa.Connection) -> sa.Row | None:
            if db.execute(insert).first():  # nobody held it
                return None
            held = db.execute(by_run).one()
            other = Holder.model_validate(held._mapping)
            if other.token != holder.token and held.expires_at > now and not other.is_gone():
                return held
            # Take it over only if nobody renewed or took it since we looked.
            swap = leases.update().where(
                leases.c.run == run,
                leases.c.token == other.token,
                leases.c.expires_at == held.expires_at,
            )
            taken = db.execute(swap.values(mine).returning(leases.c.run)).first()
            return None if taken else db.execute(by_run).one()

        held = self._transaction(take)
        if held is not None:
            holder = Holder.model_validate(held._mapping)
            raise RunLeased(run, holder, held.acquired_at, held.expires_at)

    def renew(self, run: str, holder: Holder, ttl: float) -> bool:
        expires = datetime.now(UTC) + timedelta(seconds=ttl)
        extend = (
            leases.update()
            .where(leases.c.run == run, leases.c.token == holder.token)
            .values(expires_at=expires)
            .returning(leases.c.run)
        )
        return self._transaction(lambda db: db.execute(extend).first() is not None)

    def release(self, run: str, holder: Holder) -> None:
        mine = leases.delete().where(leases.c.run == run, leases.c.token == holder.token)
        self._transaction(lambda db: db.execute(mine))

    def close(self) -> None:
        with self._lock:
            self._engine.dispose()

    def _rows(self, query: sa.Executable) -> Sequence[sa.Row]:
        return self._transaction(lambda db: db.execute(query).all())


_UPSERT: dict[str, Callable[[sa.Table], sqlite.Insert | postgresql.Insert]] = {
    "sqlite": sqlite.insert,
    "postgresql": postgresql.insert,
}


def of_run(run: str, items: Iterable[str] | None) -> Iterator[tuple[sa.ColumnElement, ...]]:
    """WHERE clauses selecting a run's rows, or its items' rows a bounded group at a time
    (so a query's parameters, and its answer, stay bounded however many items there are)."""
    if items is None:
        yield (_c.run == run,)
        return
    remaining = iter(items)
    while group := list(islice(remaining, _ITEMS_PER_QUERY)):
        yield _c.run == run, _c.item.in_(group)


def _attempt(row: sa.Row) -> Attempt:
    """An attempt from its row without re-validating it: the table's types (Timestamp
    included) already give each column's Python type; only the outcome becomes its enum."""
    values = dict(row._mapping)
    if values["outcome"] is not None:
        values["outcome"] = Outcome(values["outcome"])
    return Attempt.model_construct(**values)


def _finish_params(attempt_id: int, result: JobResult) -> dict:
    return {
        "attempt_id": attempt_id,
        "outcome": result.outcome.value,
        "exit_code": result.exit_code,
        "reason": result.reason,
        "finished_at": result.finished_at or datetime.now(UTC),
        "peak_memory_bytes": result.peak_memory_bytes,
        "message": result.message,
        "runtime_started_at": result.started_at,
        "runtime_finished_at": result.finished_at,
        "log_tail": result.log_tail,
    }


def _engine(url: sa.URL) -> sa.Engine:
    if url.get_backend_name() == "sqlite":
        assert url.database  # open_ledger makes a SQLite ledger from its file's path
        # Private to its user; SQLite gives the -wal and -shm files the same mode.
        os.close(os.open(url.database, os.O_CREAT | os.O_WRONLY, 0o600))
        engine = sa.create_engine(
            url, connect_args={"timeout": 30.0, "check_same_thread": False}, pool_size=1
        )
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return sa.create_engine(
        url.set(drivername="postgresql+psycopg"), connect_args={"connect_timeout": 10}, pool_size=1
    )


def _sqlite_connect(connection: sqlite3.Connection, _record: object) -> None:
    """WAL with ``synchronous=NORMAL`` survives the orchestrator being killed at any moment
    (only a power loss can drop the last transactions); transactions are begun explicitly."""
    connection.isolation_level = None
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")


def _sqlite_begin(connection: sa.Connection) -> None:
    connection.exec_driver_sql(connection.get_execution_options().get("sqlite_begin", "BEGIN"))


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _redact(url: sa.URL) -> str:
    """The URL without its password, for error messages."""
    if url.get_backend_name() == "sqlite":
        return str(url.database)
    return f"{url.username or ''}@{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"
