"""Run leases: one live process per run, in SQLite and PostgreSQL alike."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from sluice.ledger import RunLeased, hold_run, open_ledger
from sluice.ledger.base import Holder, Ledger
from sluice.ledger.lease import LeaseLost
from tests.core.sweep_workload import write_template
from tests.core.test_ledger import ledger, ledger_url, postgres_server  # noqa: F401 - fixtures
from tests.core.test_sweep_flow import TIER0_GI, _wait_for

HOUR = 3600.0


def elsewhere(pid: int = 4242) -> Holder:
    """A holder on another machine (its process cannot be checked from here)."""
    return Holder(
        host="elsewhere.example", pid=pid, process_started_at=datetime(2026, 1, 1, tzinfo=UTC)
    )


def test_a_second_holder_is_refused_with_who_holds_it_and_since_when(ledger: Ledger) -> None:  # noqa: F811
    first, second = elsewhere(), Holder.this_process()
    ledger.acquire("sweep/a", first, HOUR)
    with pytest.raises(RunLeased) as refused:
        ledger.acquire("sweep/a", second, HOUR)
    message = str(refused.value)
    assert "\n" not in message
    assert "'sweep/a'" in message and "elsewhere.example:4242" in message
    assert f"since {datetime.now(UTC):%Y-%m-%d}" in message
    ledger.acquire("sweep/b", second, HOUR)  # another run is free
    ledger.release("sweep/a", first)
    ledger.acquire("sweep/a", second, HOUR)


def test_two_runs_in_one_process_are_two_holders(ledger: Ledger) -> None:  # noqa: F811
    with hold_run(ledger, "stac/x"):
        second = hold_run(ledger, "stac/x")
        with pytest.raises(RunLeased, match="is already running"):
            second.__enter__()
    with hold_run(ledger, "stac/x"):  # released when the first block ended
        pass


def test_an_expired_lease_is_taken_over_and_its_holder_learns_it(ledger: Ledger) -> None:  # noqa: F811
    dead, taker = elsewhere(), Holder.this_process()
    ledger.acquire("sweep/a", dead, ttl=0)  # expired the moment it was taken
    ledger.acquire("sweep/a", taker, HOUR)
    assert ledger.renew("sweep/a", dead, HOUR) is False
    ledger.release("sweep/a", dead)  # a no-op: no longer its lease
    with pytest.raises(RunLeased, match=str(taker)):
        ledger.acquire("sweep/a", elsewhere(7), HOUR)
    assert ledger.renew("sweep/a", taker, HOUR) is True


def test_renewing_keeps_a_live_lease(ledger: Ledger) -> None:  # noqa: F811
    holder = elsewhere()
    ledger.acquire("sweep/a", holder, ttl=0)
    assert ledger.renew("sweep/a", holder, HOUR) is True
    with pytest.raises(RunLeased):
        ledger.acquire("sweep/a", Holder.this_process(), HOUR)


def test_a_dead_holder_on_this_host_is_taken_over_before_expiry(ledger: Ledger) -> None:  # noqa: F811
    child = subprocess.Popen([sys.executable, "-c", "input()"], stdin=subprocess.PIPE)
    holder = Holder.this_process().model_copy(update={"pid": child.pid})
    holder = holder.model_copy(
        update={"process_started_at": datetime.fromtimestamp(_started(child.pid), UTC)}
    )
    ledger.acquire("karabo-obs", holder, HOUR)
    with pytest.raises(RunLeased):
        ledger.acquire("karabo-obs", Holder.this_process(), HOUR)  # alive: refused
    child.communicate(b"\n")
    ledger.acquire("karabo-obs", Holder.this_process(), HOUR)  # gone: taken over at once


def test_a_reused_pid_does_not_keep_a_lease(ledger: Ledger) -> None:  # noqa: F811
    """Our own pid, but a process start time that is not ours: the holder is gone."""
    me = Holder.this_process()
    impostor = me.model_copy(update={"process_started_at": datetime(2020, 1, 1, tzinfo=UTC)})
    ledger.acquire("sweep/a", impostor, HOUR)
    ledger.acquire("sweep/a", me, HOUR)


def test_a_lease_taken_over_while_the_run_holds_it_fails_the_run(ledger: Ledger) -> None:  # noqa: F811
    lost = pytest.raises(LeaseLost, match="'sweep/a': its lease was taken over")
    with lost, hold_run(ledger, "sweep/a") as me:
        ledger.release("sweep/a", me)  # as an expiry would let another process in
        ledger.acquire("sweep/a", elsewhere(), HOUR)
    with pytest.raises(RunLeased):  # the new holder keeps it
        ledger.acquire("sweep/a", Holder.this_process(), HOUR)


def _started(pid: int) -> float:
    import psutil

    return psutil.Process(pid).create_time()


def test_a_second_sweep_of_a_running_sweep_is_refused(tmp_path, sluice_home, prefect_api) -> None:
    marker, release, done_log = tmp_path / "marker", tmp_path / "release", tmp_path / "done.log"
    template = write_template(
        tmp_path / "job.yaml",
        DONE_LOG=str(done_log),
        BLOCK_INDEX="0",
        MARKER=str(marker),
        RELEASE=str(release),
    )
    command = [sys.executable, "-m", "sluice.cli", "sweep", "--template-path", str(template)]
    command += ["--namespace", "test", "--job-name-prefix", "t", "--count", "2", "--tier", "0"]
    command += ["--schedule-start-gi", str(TIER0_GI), "--parallelism", "1", "--quiet"]
    command += ["--report-dir", str(tmp_path / "reports")]
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    env = {**os.environ, "SLUICE_LEDGER_URL": url, "PREFECT_API_URL": prefect_api}
    first = subprocess.Popen(command, env=env)
    try:
        _wait_for(lambda: marker.exists() and marker.read_text())
        second = subprocess.run(command, env=env, capture_output=True, text=True)
    finally:
        release.touch()
        first.wait()
    assert second.returncode == 2, second.stderr
    (line,) = second.stderr.strip().splitlines()  # refused before a flow run starts
    assert line.startswith(
        f"error: run 'sweep/test/t' is already running: held by {socket.gethostname()}:{first.pid}"
    )
    assert first.returncode == 0
    assert sorted(done_log.read_text().split()) == ["0", "1"]  # each index ran once
    store = open_ledger(url)
    try:
        assert len(store.attempts("sweep/test/t")) == 2
    finally:
        store.close()
