"""Endings are written in batches, and each is durable before it is reported."""

from __future__ import annotations

from pathlib import Path

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
