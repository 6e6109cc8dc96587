"""Endings are written in batches, and each is durable before it is reported."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from sluice.backends.local import LocalBackend
from sluice.execute import Planned, run_jobs
from sluice.jobs import JobResult, JobSpec, Outcome
from sluice.ledger import open_ledger


def test_every_ending_is_durable_before_it_is_reported(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger, observer = open_ledger(url), open_ledger(url)  # two connections, as two processes
    reported: dict[str, Outcome | None] = {}

    def on_result(item: str, result: JobResult) -> None:
        (attempt,) = observer.attempts("run", [item])
        reported[item] = attempt.outcome  # what another reader sees when it is reported

    jobs = [
        Planned(str(i), JobSpec(name=f"job-{i}", command=["sh", "-c", f"exit {i % 2}"]))
        for i in range(12)
    ]
    try:
        with LocalBackend(parallelism=4, log_dir=tmp_path / "logs") as backend:
            results = run_jobs(backend, ledger, "run", "wl", jobs, on_result=on_result)
        assert {item: r.outcome for item, r in results.items()} == reported
        assert reported == {
            str(i): Outcome.FAILED if i % 2 else Outcome.SUCCEEDED for i in range(12)
        }
        recorded = {a.item: a for a in observer.attempts("run")}
        assert {item: a.outcome for item, a in recorded.items()} == reported
        assert all(a.runtime_started_at and a.runtime_finished_at for a in recorded.values())
    finally:
        ledger.close()
        observer.close()


def test_an_error_while_recording_stops_reading_the_backend(tmp_path: Path) -> None:
    """The endings thread stops with its caller: it closes the backend's wait at the next
    ending instead of reading (and queueing) every remaining job's end."""
    gates = [tmp_path / f"gate-{i}" for i in range(3)]
    for gate in gates:
        os.mkfifo(gate)
    jobs = [
        Planned(str(i), JobSpec(name=f"job-{i}", command=["sh", "-c", f"read x < {gate}"]))
        for i, gate in enumerate(gates)
    ]

    def ledger_down(item: str, result: JobResult) -> None:
        raise ConnectionError("the ledger went away")

    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    with LocalBackend(parallelism=3, log_dir=tmp_path / "logs") as backend:
        pending = threading.Thread(target=_release, args=(gates[0],))
        pending.start()
        with pytest.raises(ConnectionError):
            run_jobs(backend, ledger, "run", "wl", jobs, on_result=ledger_down)
        pending.join()
        (reader,) = [t for t in threading.enumerate() if t.name == "sluice-endings"]
        _release(gates[1])  # one more ending: the thread sees it must stop, and stops
        reader.join(timeout=60)
        assert not reader.is_alive(), "still reading the backend after its caller failed"
        _release(gates[2])
    ledger.close()


def _release(gate: Path) -> None:
    with gate.open("w") as fifo:  # blocks until the job has opened it
        fifo.write("go\n")
