"""Run a batch of jobs on a backend with every attempt recorded in the ledger.

This is the one place where the ledger and a backend meet: attempts are
written *before* submission (so a killed orchestrator knows what may be
running) and each ending is written before it is reported. Endings that arrive
close together are written in one commit (``BATCH_WINDOW``): one commit per job
rewrote the same database pages thousands of times.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass

from sluice.backends.base import Backend
from sluice.jobs import JobResult, JobSpec
from sluice.ledger.base import Ledger, PlannedAttempt

BATCH_WINDOW = 0.1  # seconds an ending may wait for others to share its commit
_END = object()


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
    with contextlib.closing(_batches(backend.wait(list(by_name), timeout=timeout))) as batches:
        for batch in batches:
            ended = [by_name[result.name] for result in batch]
            for (item, _), result in zip(ended, batch, strict=True):
                results[item] = classify(item, result) if classify else result
            ledger.finish_many([(attempt_id, results[item]) for item, attempt_id in ended])
            for item, _ in ended:  # a failed job's log tail is in the ledger now: not held
                results[item].log_tail = None
            if on_result is not None:
                for item, _ in ended:
                    on_result(item, results[item])
    return results


def _batches(results: Iterator[JobResult]) -> Generator[list[JobResult], None, None]:
    """``results`` in batches: whatever else ended within ``BATCH_WINDOW`` of a batch's first.

    A thread drains ``results`` so a batch closes on time even while the backend has
    nothing more to say. When the caller stops early (an error, a closed generator), the
    thread stops at the backend's next ending and closes its wait instead of reading on.
    """
    arrived: queue.SimpleQueue = queue.SimpleQueue()
    stop = threading.Event()

    def drain() -> None:
        try:
            for result in results:
                if stop.is_set():
                    break
                arrived.put(result)
            else:
                arrived.put(_END)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            arrived.put(exc)
        finally:
            close = getattr(results, "close", None)
            if stop.is_set() and close is not None:
                close()

    threading.Thread(target=drain, name="sluice-endings", daemon=True).start()
    try:
        yield from _collect(arrived)
    finally:
        stop.set()


def _collect(arrived: queue.SimpleQueue) -> Iterator[list[JobResult]]:
    batch: list[JobResult] = []
    deadline = None
    while True:
        try:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            got = arrived.get(timeout=wait)
        except queue.Empty:
            yield batch
            batch, deadline = [], None
            continue
        if isinstance(got, JobResult):
            batch.append(got)
            deadline = deadline or time.monotonic() + BATCH_WINDOW
            continue
        if batch:
            yield batch
        if isinstance(got, BaseException):
            raise got
        return
