"""SQL shared by the SQLite and PostgreSQL ledgers (``?`` placeholders)."""

SCHEMA = """
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
CREATE INDEX IF NOT EXISTS attempts_workload ON attempts (workload, outcome);
"""

COLUMNS = (
    "id, run, item, workload, job_name, tier, memory_bytes, outcome, exit_code, reason,"
    " started_at, finished_at, peak_memory_bytes, message"
)

INSERT = (
    "INSERT INTO attempts (run, item, workload, job_name, tier, memory_bytes, started_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)

FINISH = (
    "UPDATE attempts SET outcome = ?, exit_code = ?, reason = ?, finished_at = ?,"
    " peak_memory_bytes = ?, message = ? WHERE id = ?"
)

LATEST = (
    f"SELECT {COLUMNS} FROM attempts WHERE id IN"
    " (SELECT MAX(id) FROM attempts WHERE run = ? GROUP BY item)"
)

LATEST_OF_ITEMS = (
    f"SELECT {COLUMNS} FROM attempts WHERE id IN"
    " (SELECT MAX(id) FROM attempts WHERE run = ? AND item IN ({marks}) GROUP BY item)"
)

LOWEST_SUCCEEDED = (
    "SELECT item, MIN(tier) FROM attempts"
    " WHERE workload = ? AND outcome = 'succeeded' AND tier IS NOT NULL GROUP BY item"
)
