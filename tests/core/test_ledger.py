"""The ledger contract, run against both stores: SQLite (embedded) and PostgreSQL.

The PostgreSQL store runs against a private throwaway cluster of Debian's
PostgreSQL binaries (initdb + pg_ctl on a free port), started once per session.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from sluice.errors import BackendUnavailable
from sluice.jobs import JobResult, Outcome
from sluice.ledger import PlannedAttempt, open_ledger
from sluice.ledger.base import Ledger

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_postgres(argv: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the postgres user then."""
    if os.geteuid() != 0:
        return argv
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(argv)]


@contextmanager
def private_postgres(*, fsync: bool = False) -> Iterator[str]:
    """A private PostgreSQL cluster (trust auth, localhost only, a free port); its base URL."""
    root = Path(tempfile.mkdtemp(prefix="sluice-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
    port = _free_port()
    subprocess.run(
        _as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "sluice"]),
        check=True,
        capture_output=True,
    )
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync={'on' if fsync else 'off'}"
    )
    subprocess.run(
        _as_postgres(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(root / "log"),
                "-w",
                "start",
                "-o",
                f"'{options}'",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://sluice@127.0.0.1:{port}"
    finally:
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The base URL of a private PostgreSQL cluster, started once per session."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL binaries not found at {PG_BIN} (apt-get install postgresql)")
    with private_postgres() as url:
        yield url


_databases = iter(range(1_000_000))


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty ledger URL of each store."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    base = request.getfixturevalue("postgres_server")
    name = f"ledger_{next(_databases)}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}")
    return f"{base}/{name}"


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    store = open_ledger(ledger_url)
    yield store
    store.close()


def planned(*items: str, tier: int | None = 0, memory: int | None = 2**30) -> list[PlannedAttempt]:
    return [
        PlannedAttempt(item=i, job_name=f"job-{i}-t{tier}", tier=tier, memory_bytes=memory)
        for i in items
    ]


def result(name: str, outcome: Outcome, exit_code: int | None = None, **kw) -> JobResult:
    return JobResult(name=name, outcome=outcome, exit_code=exit_code, **kw)


def test_begin_records_running_attempts_in_order(ledger: Ledger) -> None:
    ids = ledger.begin("run-a", "wl", planned("0", "1", "2"))
    assert len(ids) == 3 and ids == sorted(ids) and len(set(ids)) == 3
    attempts = ledger.attempts("run-a")
    assert [a.item for a in attempts] == ["0", "1", "2"]
    assert [a.id for a in attempts] == ids
    assert all(a.running and a.outcome is None for a in attempts)
    assert attempts[0].job_name == "job-0-t0"
    assert attempts[0].memory_bytes == 2**30
    assert attempts[0].started_at.tzinfo is not None


def test_begin_with_nothing_planned(ledger: Ledger) -> None:
    assert ledger.begin("run-a", "wl", []) == []
    assert ledger.attempts("run-a") == []


def test_finish_records_outcome_reason_and_times(ledger: Ledger) -> None:
    (ok, oom, bad) = ledger.begin("run-a", "wl", planned("0", "1", "2"))
    end = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    ledger.finish(ok, result("job-0-t0", Outcome.SUCCEEDED, 0, finished_at=end))
    ledger.finish_many(
        [
            (oom, result("job-1-t0", Outcome.OOM, 137, peak_memory_bytes=5 * 2**20)),
            (bad, result("job-2-t0", Outcome.FAILED, 3, message="boom")),
        ]
    )
    by_item = {a.item: a for a in ledger.attempts("run-a")}
    assert by_item["0"].outcome is Outcome.SUCCEEDED and by_item["0"].reason is None
    assert by_item["0"].finished_at == end
    assert by_item["1"].outcome is Outcome.OOM and by_item["1"].reason == "oom"
    assert by_item["1"].peak_memory_bytes == 5 * 2**20 and by_item["1"].exit_code == 137
    assert by_item["2"].reason == "exit:3" and by_item["2"].message == "boom"
    assert not any(a.running for a in by_item.values())


def test_a_kept_log_tail_is_read_alone(ledger: Ledger) -> None:
    (ok, bad) = ledger.begin("run-a", "wl", planned("0", "1"))
    tail = "Traceback ...\nMemoryError: é\n"
    ledger.finish_many(
        [(ok, result("j", Outcome.SUCCEEDED)), (bad, result("j", Outcome.OOM, log_tail=tail))]
    )
    assert (ledger.kept_log(ok), ledger.kept_log(bad), ledger.kept_log(bad + 99)) == (
        None,
        tail,
        None,
    )


def test_latest_is_the_newest_attempt_per_item(ledger: Ledger) -> None:
    (a0, a1) = ledger.begin("run-a", "wl", planned("0", "1", tier=0))
    ledger.finish_many([(a0, result("j", Outcome.OOM, 137)), (a1, result("j", Outcome.SUCCEEDED))])
    (b0,) = ledger.begin("run-a", "wl", planned("0", tier=1, memory=2**31))
    latest = ledger.latest("run-a")
    assert set(latest) == {"0", "1"}
    assert latest["0"].id == b0 and latest["0"].running and latest["0"].tier == 1
    assert latest["1"].outcome is Outcome.SUCCEEDED
    assert ledger.latest("other-run") == {}
    assert set(ledger.latest("run-a", ["0", "9"])) == {"0"}
    assert ledger.latest("run-a", ["0"])["0"].id == b0
    assert ledger.latest("run-a", []) == {}


def test_last_id_is_a_baseline_for_new_attempts(ledger: Ledger) -> None:
    assert ledger.last_id("run-a") == 0
    (first, second) = ledger.begin("run-a", "wl", planned("0", "1"))
    ledger.begin("run-b", "wl", planned("0"))
    assert ledger.last_id("run-a") == second
    (third,) = ledger.begin("run-a", "wl", planned("2"))
    assert third > second > first
    assert ledger.last_id("run-a") == third


def test_attempts_filtered_by_items(ledger: Ledger) -> None:
    ledger.begin("run-a", "wl", planned("0", "1", "2"))
    ledger.begin("run-b", "wl", planned("1"))
    assert [a.item for a in ledger.attempts("run-a", ["2", "0"])] == ["0", "2"]
    assert ledger.attempts("run-a", []) == []
    assert [a.run for a in ledger.attempts("run-b")] == ["run-b"]


def test_lowest_succeeded_tier_spans_runs_of_a_workload(ledger: Ledger) -> None:
    (a,) = ledger.begin("run-a", "wl", planned("0", tier=2))
    (b,) = ledger.begin("run-b", "wl", planned("0", tier=1))
    (c,) = ledger.begin("run-b", "wl", planned("1", tier=3))
    (d,) = ledger.begin("run-c", "other", planned("1", tier=0))
    (e,) = ledger.begin("run-c", "wl", planned("2", tier=None))
    ledger.finish_many(
        [
            (a, result("j", Outcome.SUCCEEDED)),
            (b, result("j", Outcome.SUCCEEDED)),
            (c, result("j", Outcome.SUCCEEDED)),
            (d, result("j", Outcome.SUCCEEDED)),
            (e, result("j", Outcome.SUCCEEDED)),
        ]
    )
    (f,) = ledger.begin("run-d", "wl", planned("1", tier=0))
    ledger.finish(f, result("j", Outcome.OOM, 137))
    assert ledger.lowest_succeeded_tiers("wl") == {"0": 1, "1": 3}
    assert ledger.lowest_succeeded_tiers("other") == {"1": 0}


def test_forget_items_or_a_whole_run(ledger: Ledger) -> None:
    ledger.begin("run-a", "wl", planned("0", "1", "2"))
    ledger.begin("run-b", "wl", planned("0"))
    assert ledger.runs() == ["run-a", "run-b"]
    assert ledger.forget("run-a", ["1"]) == 1
    assert [a.item for a in ledger.attempts("run-a")] == ["0", "2"]
    assert ledger.forget("run-a") == 2
    assert ledger.runs() == ["run-b"]
    assert ledger.forget("missing") == 0


def test_records_survive_reopening(ledger_url: str) -> None:
    first = open_ledger(ledger_url)
    (a,) = first.begin("run-a", "wl", planned("0"))
    first.finish(a, result("j", Outcome.TIMEOUT))
    first.close()
    second = open_ledger(ledger_url)
    try:
        (attempt,) = second.attempts("run-a")
        assert attempt.outcome is Outcome.TIMEOUT and attempt.reason == "timeout"
    finally:
        second.close()


def test_two_ledgers_on_one_store_see_each_others_records(ledger_url: str) -> None:
    one, two = open_ledger(ledger_url), open_ledger(ledger_url)
    try:
        (a,) = one.begin("run-a", "wl", planned("0"))
        (b,) = two.begin("run-a", "wl", planned("1"))
        assert a != b
        two.finish(a, result("j", Outcome.LOST))
        assert one.latest("run-a")["0"].outcome is Outcome.LOST
    finally:
        one.close()
        two.close()


def test_threads_share_one_ledger(ledger: Ledger) -> None:
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for n in range(20):
                (attempt,) = ledger.begin("run-a", "wl", planned(f"{worker}-{n}"))
                ledger.finish(attempt, result("j", Outcome.SUCCEEDED))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    attempts = ledger.attempts("run-a")
    assert len(attempts) == 80 and all(a.outcome is Outcome.SUCCEEDED for a in attempts)


def test_unreachable_postgres_is_one_clear_line() -> None:
    port = _free_port()
    with pytest.raises(BackendUnavailable) as caught:
        open_ledger(f"postgresql://sluice:s3cret@127.0.0.1:{port}/ledger")
    message = str(caught.value)
    assert "\n" not in message and "unreachable" in message
    assert f"127.0.0.1:{port}/ledger" in message and "s3cret" not in message


def test_ledger_settings_block_opens_postgres_with_a_secret_password(postgres_server) -> None:
    from sluice.blocks.ledger import LedgerSettings

    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as db:
        db.execute("CREATE DATABASE block_ledger")
    settings = LedgerSettings(url=f"{postgres_server}/block_ledger", password="p@ss:/word")
    assert "p@ss" not in repr(settings) and "p@ss" not in settings.url
    assert psycopg.conninfo.conninfo_to_dict(settings.resolved_url())["password"] == "p@ss:/word"
    ledger = settings.open()
    try:
        assert ledger.begin("run", "wl", planned("0")) == [1]
    finally:
        ledger.close()


def test_postgres_ledger_reconnects_after_losing_its_connection(postgres_server) -> None:
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as db:
        db.execute("CREATE DATABASE reconnect_ledger")
    ledger = open_ledger(f"{postgres_server}/reconnect_ledger")
    try:
        (first,) = ledger.begin("run", "wl", planned("0"))
        with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = 'reconnect_ledger'"
            ).fetchall()
        assert killed == [(True,)]
        ledger.finish(first, result("j", Outcome.SUCCEEDED))
        assert ledger.latest("run")["0"].outcome is Outcome.SUCCEEDED
    finally:
        ledger.close()
