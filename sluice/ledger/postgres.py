"""The ledger in PostgreSQL: for flows that run in a cluster, where local disk is not durable.

Same SQL and behaviour as the SQLite ledger (``sluice.ledger.sql``); only the
placeholders (``%s``), the id column and ``RETURNING id`` differ.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import psycopg

from sluice.errors import BackendUnavailable
from sluice.jobs import JobResult
from sluice.ledger import sql
from sluice.ledger.base import Attempt, PlannedAttempt
from sluice.ledger.rows import attempt_from_row, finish_params

_SCHEMA_LOCK = 0x511CE  # advisory lock: two processes creating the schema at once


def _pg(query: str) -> str:
    return query.replace("?", "%s")


class PostgresLedger:
    """A ledger in a PostgreSQL database, safe to share between threads of one process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        try:
            self._db = psycopg.connect(url, connect_timeout=10)
        except psycopg.OperationalError as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc)
            raise BackendUnavailable(
                f"ledger database {_redact(url)} is unreachable: {first_line}"
            ) from None
        with self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(%s)", [_SCHEMA_LOCK])
            for statement in sql.SCHEMA.format(id_type="BIGSERIAL PRIMARY KEY").split(";"):
                if statement.strip():
                    self._db.execute(statement)

    def begin(self, run: str, workload: str, planned: Sequence[PlannedAttempt]) -> list[int]:
        if not planned:
            return []
        now = datetime.now(UTC).isoformat()
        rows = [(run, p.item, workload, p.job_name, p.tier, p.memory_bytes, now) for p in planned]
        with self._lock, self._db.transaction(), self._db.cursor() as cur:
            cur.executemany(_pg(sql.INSERT) + " RETURNING id", rows, returning=True)
            ids = []
            while True:
                ids.append(cur.fetchone()[0])
                if not cur.nextset():
                    return ids

    def finish(self, attempt_id: int, result: JobResult) -> None:
        self.finish_many([(attempt_id, result)])

    def finish_many(self, ended: Sequence[tuple[int, JobResult]]) -> None:
        if not ended:
            return
        with self._lock, self._db.transaction(), self._db.cursor() as cur:
            cur.executemany(_pg(sql.FINISH), [finish_params(i, r) for i, r in ended])

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
        with self._lock, self._db.transaction():
            return self._db.execute(query, params).rowcount

    def runs(self) -> list[str]:
        return [r[0] for r in self._query("SELECT DISTINCT run FROM attempts ORDER BY run", [])]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _query(self, query: str, params: list) -> list[tuple]:
        with self._lock, self._db.transaction():
            return self._db.execute(query, params).fetchall()


def _redact(url: str) -> str:
    """The URL without its password, for error messages."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    host = info.get("host", "localhost")
    return f"{info.get('user', '')}@{host}:{info.get('port', 5432)}/{info.get('dbname', '')}"
