"""The embedded default ledger: one SQLite file in WAL mode.

WAL with ``synchronous=NORMAL`` survives the orchestrator being killed at any
moment (only a power loss can drop the last transactions).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sluice.jobs import JobResult
from sluice.ledger import sql
from sluice.ledger.base import Attempt, PlannedAttempt
from sluice.ledger.rows import attempt_from_row, finish_params


class SqliteLedger:
    """A ledger in a SQLite file, safe to share between threads of one process."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(sql.SCHEMA.format(id_type="INTEGER PRIMARY KEY AUTOINCREMENT"))

    def begin(self, run: str, workload: str, planned: Sequence[PlannedAttempt]) -> list[int]:
        now = datetime.now(UTC).isoformat()
        with self._lock, self._db:
            return [
                self._db.execute(
                    sql.INSERT,
                    (run, p.item, workload, p.job_name, p.tier, p.memory_bytes, now),
                ).lastrowid
                for p in planned
            ]

    def finish(self, attempt_id: int, result: JobResult) -> None:
        self.finish_many([(attempt_id, result)])

    def finish_many(self, ended: Sequence[tuple[int, JobResult]]) -> None:
        with self._lock, self._db:
            self._db.executemany(sql.FINISH, [finish_params(i, r) for i, r in ended])

    def attempts(self, run: str, items: Iterable[str] | None = None) -> list[Attempt]:
        query = f"SELECT {sql.COLUMNS} FROM attempts WHERE run = ?"
        params: list = [run]
        if items is not None:
            wanted = list(items)
            query += f" AND item IN ({','.join('?' * len(wanted))})"
            params += wanted
        return [attempt_from_row(r) for r in self._query(query + " ORDER BY id", params)]

    def latest(self, run: str, items: Iterable[str] | None = None) -> dict[str, Attempt]:
        if items is None:
            rows = self._query(sql.LATEST, [run])
        else:
            wanted = list(items)
            rows = self._query(
                sql.LATEST_OF_ITEMS.format(marks=",".join("?" * len(wanted))), [run, *wanted]
            )
        return {a.item: a for a in map(attempt_from_row, rows)}

    def last_id(self, run: str) -> int:
        return self._query("SELECT COALESCE(MAX(id), 0) FROM attempts WHERE run = ?", [run])[0][0]

    def lowest_succeeded_tiers(self, workload: str) -> dict[str, int]:
        return dict(self._query(sql.LOWEST_SUCCEEDED, [workload]))

    def forget(self, run: str, items: Iterable[str] | None = None) -> int:
        query, params = "DELETE FROM attempts WHERE run = ?", [run]
        if items is not None:
            wanted = list(items)
            query += f" AND item IN ({','.join('?' * len(wanted))})"
            params += wanted
        with self._lock, self._db:
            return self._db.execute(query, params).rowcount

    def runs(self) -> list[str]:
        return [r[0] for r in self._query("SELECT DISTINCT run FROM attempts ORDER BY run", [])]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _query(self, query: str, params: list) -> list[tuple]:
        with self._lock:
            return self._db.execute(query, params).fetchall()
