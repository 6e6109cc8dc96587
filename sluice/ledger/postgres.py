"""The ledger in PostgreSQL: for flows that run in a cluster, where local disk is not durable.

Same SQL and behaviour as the SQLite ledger (``sluice.ledger.sql``); only the
placeholders (``%s``), the id column and ``RETURNING id`` differ.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import psycopg

from sluice.errors import BackendUnavailable
from sluice.jobs import JobResult
from sluice.ledger import sql
from sluice.ledger.base import Attempt, PlannedAttempt
from sluice.ledger.rows import attempt_from_row, finish_params

T = TypeVar("T")
_SCHEMA_LOCK = 0x511CE  # advisory lock: two processes creating the schema at once


def _pg(query: str) -> str:
    return query.replace("?", "%s")


class PostgresLedger:
    """A ledger in a PostgreSQL database, safe to share between threads of one process.

    A lost connection (server restart, network blip) is reopened and the
    transaction retried once. Retrying is harmless here: updates and deletes are
    idempotent, and the one insert that might have committed unseen only adds a
    duplicate "running" attempt of the same job name, which a resumed run adopts.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._db = self._connect()
        with self._lock, self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(%s)", [_SCHEMA_LOCK])
            for statement in sql.SCHEMA.format(id_type="BIGSERIAL PRIMARY KEY").split(";"):
                if statement.strip():
                    self._db.execute(statement)

    def _connect(self) -> psycopg.Connection:
        try:
            return psycopg.connect(self.url, connect_timeout=10)
        except psycopg.OperationalError as exc:
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise BackendUnavailable(
                f"ledger database {_redact(self.url)} is unreachable: {first_line}"
            ) from None

    def _transaction(self, work: Callable[[psycopg.Cursor], T]) -> T:
        """``work(cursor)`` in one transaction, on a fresh connection if the old one died."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._db.closed or self._db.broken:
                        self._db = self._connect()
                    with self._db.transaction(), self._db.cursor() as cur:
                        return work(cur)
                except psycopg.OperationalError:
                    if attempt == 2 or not (self._db.closed or self._db.broken):
                        raise
        raise AssertionError("unreachable")

    def begin(self, run: str, workload: str, planned: Sequence[PlannedAttempt]) -> list[int]:
        if not planned:
            return []
        now = datetime.now(UTC).isoformat()
        rows = [(run, p.item, workload, p.job_name, p.tier, p.memory_bytes, now) for p in planned]

        def insert(cur: psycopg.Cursor) -> list[int]:
            cur.executemany(_pg(sql.INSERT) + " RETURNING id", rows, returning=True)
            ids = []
            while True:
                ids.append(cur.fetchone()[0])
                if not cur.nextset():
                    return ids

        return self._transaction(insert)

    def finish(self, attempt_id: int, result: JobResult) -> None:
        self.finish_many([(attempt_id, result)])

    def finish_many(self, ended: Sequence[tuple[int, JobResult]]) -> None:
        if ended:
            params = [finish_params(i, r) for i, r in ended]
            self._transaction(lambda cur: cur.executemany(_pg(sql.FINISH), params))

    def attempts(self, run: str, items: Iterable[str] | None = None) -> list[Attempt]:
        query, params = f"SELECT {sql.COLUMNS} FROM attempts WHERE run = %s", [run]
        if items is not None:
            query += " AND item = ANY(%s)"
            params.append(list(items))
        return [attempt_from_row(r) for r in self._query(query + " ORDER BY id", params)]

    def latest(self, run: str, items: Iterable[str] | None = None) -> dict[str, Attempt]:
        if items is None:
            rows = self._query(_pg(sql.LATEST), [run])
        else:
            query = sql.LATEST_OF_ITEMS.format(marks="SELECT UNNEST(?::text[])")
            rows = self._query(_pg(query), [run, list(items)])
        return {a.item: a for a in map(attempt_from_row, rows)}

    def last_id(self, run: str) -> int:
        return self._query("SELECT COALESCE(MAX(id), 0) FROM attempts WHERE run = %s", [run])[0][0]

    def lowest_succeeded_tiers(self, workload: str) -> dict[str, int]:
        return dict(self._query(_pg(sql.LOWEST_SUCCEEDED), [workload]))

    def forget(self, run: str, items: Iterable[str] | None = None) -> int:
        query, params = "DELETE FROM attempts WHERE run = %s", [run]
        if items is not None:
            query += " AND item = ANY(%s)"
            params.append(list(items))
        return self._transaction(lambda cur: cur.execute(query, params).rowcount)

    def runs(self) -> list[str]:
        return [r[0] for r in self._query("SELECT DISTINCT run FROM attempts ORDER BY run", [])]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _query(self, query: str, params: list) -> list[tuple]:
        return self._transaction(lambda cur: cur.execute(query, params).fetchall())


def _redact(url: str) -> str:
    """The URL without its password, for error messages."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    host = info.get("host", "localhost")
    return f"{info.get('user', '')}@{host}:{info.get('port', 5432)}/{info.get('dbname', '')}"
