"""Up to ``parallelism`` chunk jobs in flight on one backend, shared by every batch.

``--command`` work runs each chunk as one backend job. Batches (sub-trees, upper parents)
hand their ready chunks to one :class:`JobPool` per ingest and get a future per job; the
pool keeps at most ``parallelism`` jobs submitted and not yet ended, across all batches.

Jobs go out in *waves*: one ``Backend.submit`` call for as many pending jobs as there
are free slots, and one ``Backend.wait`` (one list + watch on Kubernetes, no per-job
polling) per wave, each in its own thread. A new wave is sent when at least ``refill``
slots are free (a twentieth of ``parallelism``), or as soon as every pending job fits: a
parent whose children just finished goes out at once when the pool has room. So the
status requests grow with the number of waves, not with the number of chunks.

When the pool runs dry (nothing pending and at least ``refill`` slots free: every batch
in flight waits on its last few parents) it calls ``on_hungry`` once, so the ingest can
start one more batch instead of leaving the slots idle until a batch ends.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from sluice.backends.base import Backend
from sluice.jobs import JobResult, JobSpec


class PoolClosed(RuntimeError):
    """The pool was closed before this job was sent."""


@dataclass
class PoolStats:
    """What the pool did: waves sent, jobs sent, and the most jobs in flight at once."""

    waves: int = 0
    jobs: int = 0
    peak_in_flight: int = 0


class JobPool:
    """Meters jobs onto ``backend``: at most ``parallelism`` submitted and not yet ended.

    With ``replace`` (a requeue) an existing job of the same name is deleted and run
    afresh; without it (a first run, or a resume) an existing job is adopted, so a chunk
    job that outlived a killed orchestrator is awaited, not run twice.
    """

    def __init__(
        self,
        backend: Backend,
        parallelism: int,
        refill: int | None = None,
        *,
        replace: bool = False,
    ) -> None:
        if parallelism < 1:
            raise ValueError("parallelism must be at least 1")
        self.backend = backend
        self.parallelism = parallelism
        self.refill = refill or max(1, parallelism // 20)
        self.replace = replace
        self.stats = PoolStats()
        self._pending: deque[tuple[JobSpec, Future[JobResult]]] = deque()
        self._in_flight = 0
        self._closed = False
        self._starved = False  # on_hungry was called and no job came since
        self.on_hungry: Callable[[], None] | None = None
        self._changed = threading.Condition()
        self._waiters: list[threading.Thread] = []
        self._driver = threading.Thread(target=self._drive, name="cg-job-pool", daemon=True)
        self._driver.start()

    def submit(self, job: JobSpec) -> Future[JobResult]:
        """Queue ``job``; the future ends with its ``JobResult`` (or the backend's error)."""
        future: Future[JobResult] = Future()
        with self._changed:
            if self._closed:
                raise PoolClosed("the job pool is closed")
            self._pending.append((job, future))
            self._starved = False
            self._changed.notify_all()
        return future

    @property
    def hungry(self) -> bool:
        """Nothing pending and at least ``refill`` slots free."""
        with self._changed:
            return self._hungry()

    def _hungry(self) -> bool:
        free = self.parallelism - self._in_flight
        return not self._closed and not self._pending and free >= self.refill

    def logs(self, name: str) -> str:
        return self.backend.logs(name)

    def close(self) -> None:
        """Stop sending; jobs not yet sent are cancelled, jobs in flight are awaited."""
        with self._changed:
            self._closed = True
            while self._pending:
                self._pending.popleft()[1].cancel()
            self._changed.notify_all()
        self._driver.join()
        for waiter in list(self._waiters):
            waiter.join()
        self.backend.close()

    def _ready(self) -> bool:
        if self._closed:
            return True
        free = self.parallelism - self._in_flight
        return bool(self._pending) and free >= min(self.refill, len(self._pending))

    def _drive(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(self._ready)
                if self._closed:
                    return
                free = self.parallelism - self._in_flight
                wave = [self._pending.popleft() for _ in range(min(free, len(self._pending)))]
                self._in_flight += len(wave)
                self.stats.waves += 1
                self.stats.jobs += len(wave)
                self.stats.peak_in_flight = max(self.stats.peak_in_flight, self._in_flight)
            self._send(wave)

    def _send(self, wave: list[tuple[JobSpec, Future[JobResult]]]) -> None:
        futures = {job.name: future for job, future in wave}
        try:
            self.backend.submit([job for job, _ in wave], replace=self.replace)
        except Exception as error:  # the backend refused the wave: every job in it failed
            self._settle(futures, error)
            return
        waiter = threading.Thread(
            target=self._await, args=(futures,), name="cg-job-wave", daemon=True
        )
        self._waiters.append(waiter)
        waiter.start()

    def _await(self, futures: dict[str, Future[JobResult]]) -> None:
        try:
            for result in self.backend.wait(list(futures)):
                future = futures.pop(result.name, None)
                if future is not None:
                    self._release(1)
                    future.set_result(result)
        except Exception as error:
            self._settle(futures, error)
        else:
            self._settle(futures, RuntimeError("the backend reported no end for this job"))
        finally:
            self._waiters.remove(threading.current_thread())

    def _settle(self, futures: dict[str, Future[JobResult]], error: BaseException) -> None:
        self._release(len(futures))
        for future in futures.values():
            future.set_exception(error)
        futures.clear()

    def _release(self, count: int) -> None:
        if not count:
            return
        with self._changed:
            self._in_flight -= count
            self._changed.notify_all()
            signal = self.on_hungry if self._hungry() and not self._starved else None
            self._starved = self._starved or signal is not None
        if signal is not None:
            signal()
