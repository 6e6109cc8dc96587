"""Run a batch of jobs on a backend with every attempt recorded in the ledger.

This is the one place where the ledger and a backend meet: attempts are
written *before* submission (so a killed orchestrator knows what may be
running) and each ending is written as it arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sluice.backends.base import Backend
from sluice.jobs import JobResult, JobSpec
from sluice.ledger.base import Ledger, PlannedAttempt


@dataclass(frozen=True)
class Planned:
    """One item's job for this attempt; ``attempt_id`` continues a recorded attempt whose
    job is re-attached (same job name) instead of recording a new one."""

    item: str
    job: JobSpec
    tier: int | None = None
    attempt_id: int | None = None


def run_jobs(
    backend: Backend,
    ledger: Ledger,
    run: str,
    workload: str,
    planned: Sequence[Planned],
    *,
    timeout: float | None = None,
    replace: bool = False,
    on_result: Callable[[str, JobResult], None] | None = None,
    classify: Callable[[str, JobResult], JobResult] | None = None,
) -> dict[str, JobResult]:
    """Submit ``planned`` jobs, wait for all of them, and record every attempt.

    Returns each item's result. ``on_result`` is called as each job ends
    (progress reporting). ``classify`` turns a backend result into the one
    recorded (for work that exits 0 but reports failure in its own output).
    """
    if not planned:
        return {}
    new = iter(
        ledger.begin(
            run,
            workload,
            [
                PlannedAttempt(
                    item=p.item, job_name=p.job.name, tier=p.tier, memory_bytes=p.job.memory_bytes
                )
                for p in planned
                if p.attempt_id is None
            ],
        )
    )
    ids = [next(new) if p.attempt_id is None else p.attempt_id for p in planned]
    by_name = {p.job.name: (p.item, attempt_id) for p, attempt_id in zip(planned, ids, strict=True)}
    backend.submit([p.job for p in planned], replace=replace)
    results: dict[str, JobResult] = {}
    for result in backend.wait(list(by_name), timeout=timeout):
        item, attempt_id = by_name[result.name]
        if classify:
            result = classify(item, result)
        ledger.finish(attempt_id, result)
        results[item] = result
        if on_result:
            on_result(item, result)
    return results
