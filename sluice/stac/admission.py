"""Admission control for any flow: stop/resume hysteresis and paced submissions.

``AdmissionGate`` is the seed's hysteresis: submissions pause when the backend
reports ``stop`` active jobs and resume only once that count is at or below
``resume``. The count comes from the backend's own job list
(``CountsActive.active_count``), so pipelines of other batches and jobs still
queued count too, exactly as the seed counted Nomad's non-dead ``pipeline``
jobs. Between counts the gate adds its own submissions to the last count (an
upper bound: jobs only end meanwhile) and re-counts only when that bound would
reach ``stop``. While paused it re-counts when one of its jobs ends (it sees the
results go by) and at the latest every ``poll_seconds``. Jobs other flows submit
between two counts are seen at the next count.

Pacing (``--wait_seconds``) is ``Pacer``: at least ``wait_seconds`` between two
submissions of a batch, on a monotonic clock, so it costs what was asked (the seed
slept ``wait_seconds`` after every submission). A pace shared by several flows is
a Prefect rate limit instead (``sluice.tasks.admission``), at the cost of an API call
per submission.

``GatedBackend`` applies a gate to any backend, so ``run_jobs`` needs no change.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sluice.backends.base import Backend, CountsActive
from sluice.errors import SluiceInputError
from sluice.jobs import JobResult, JobSpec

log = logging.getLogger(__name__)


def check_thresholds(stop: int, resume: int) -> None:
    """``0 <= resume < stop``, or a one-line error naming the flags."""
    if stop < 1:
        raise SluiceInputError(f"--stop_threshold {stop}: must be at least 1")
    if resume < 0:
        raise SluiceInputError(f"--resume_threshold {resume}: must not be negative")
    if resume >= stop:
        raise SluiceInputError(f"--resume_threshold {resume} must be below --stop_threshold {stop}")


@dataclass
class AdmissionStats:
    """What a gate did: the figures a report or benchmark prints."""

    admitted: int = 0
    pauses: int = 0
    counts: int = 0
    max_active: int = 0
    paused_seconds: float = 0.0
    pacing_seconds: float = 0.0
    gate_seconds: float = 0.0

    @property
    def overhead_seconds(self) -> float:
        """Time spent in the gate while not paused (counting and pacing: rate_limit calls
        and any wait for a slot)."""
        return self.gate_seconds - self.paused_seconds


class AdmissionGate:
    """Stop/resume hysteresis over an active-job count, plus optional pacing."""

    def __init__(
        self,
        count: Callable[[], int],
        *,
        stop: int,
        resume: int,
        poll_seconds: float = 10.0,
        pace: Callable[[], None] | None = None,
    ) -> None:
        check_thresholds(stop, resume)
        self.stop, self.resume = stop, resume
        self.poll_seconds = poll_seconds
        self.paused = False
        self.stats = AdmissionStats()
        self._count = count
        self._pace = pace
        self._turn = threading.Lock()
        self._ended = threading.Condition()
        self._endings = 0
        self._seen = 0
        self._estimate: int | None = None

    def _active(self) -> int:
        self.stats.counts += 1
        with self._ended:
            self._seen = self._endings  # an ending after this re-counts
        return self._count()

    @contextmanager
    def admission(self, on_pause: Callable[[], None] | None = None) -> Iterator[int]:
        """Hold the gate for one submission; yields the active count before it.

        Submissions are serialized: the count the next one sees includes this one.
        ``on_pause`` is called each time the gate pauses.
        """
        with self._turn:
            started = time.perf_counter()
            # our own submissions since the last count are an upper bound of the change
            # (jobs only end in between): re-count only when that bound could reach stop
            if self._estimate is None or self._estimate + 1 >= self.stop:
                active = self._active()
            else:
                active = self._estimate
            while True:
                if not self.paused and active >= self.stop:
                    self.paused = True
                    self.stats.pauses += 1
                    if on_pause is not None:
                        on_pause()
                elif self.paused and active <= self.resume:
                    self.paused = False
                if not self.paused:
                    break
                paused_at = time.perf_counter()
                self._wait_for_an_ending()
                self.stats.paused_seconds += time.perf_counter() - paused_at
                active = self._active()
            if self._pace is not None:
                paced_at = time.perf_counter()
                self._pace()
                self.stats.pacing_seconds += time.perf_counter() - paced_at
            self.stats.admitted += 1
            self.stats.max_active = max(self.stats.max_active, active + 1)
            self._estimate = active + 1
            self.stats.gate_seconds += time.perf_counter() - started
            yield active

    def ended(self) -> None:
        """Tell the gate a job ended (wakes a paused admission to re-count)."""
        with self._ended:
            self._endings += 1
            self._ended.notify_all()

    def _wait_for_an_ending(self) -> None:
        """Until a job ended since the last count (or ``poll_seconds`` passed)."""
        with self._ended:
            self._ended.wait_for(lambda: self._endings != self._seen, timeout=self.poll_seconds)


class GatedBackend:
    """A backend whose submissions pass through an ``AdmissionGate`` one job at a time.

    While a ``submit`` call is paused, nobody may be waiting on the jobs it
    already submitted (its caller waits only after ``submit`` returns), so on
    each pause a watcher thread follows those jobs and wakes the gate as they end.
    """

    def __init__(self, backend: Backend, gate: AdmissionGate) -> None:
        self.backend = backend
        self.gate = gate
        self.name = backend.name

    def submit(self, jobs: Sequence[JobSpec], *, replace: bool = False) -> list[str]:
        names: list[str] = []

        def watch_submitted() -> None:
            self._watch(list(names))

        for job in jobs:
            with self.gate.admission(on_pause=watch_submitted):
                names.extend(self.backend.submit([job], replace=replace))
        return names

    def _watch(self, names: list[str]) -> None:
        if names:
            threading.Thread(target=self._follow, args=(names,), daemon=True).start()

    def _follow(self, names: list[str]) -> None:
        try:
            for _ in self.backend.wait(names):
                self.gate.ended()
        except Exception:  # the backend closed under us: the poll still re-counts
            log.debug("admission watcher stopped", exc_info=True)

    def wait(self, names: Iterable[str], *, timeout: float | None = None) -> Iterator[JobResult]:
        for result in self.backend.wait(names, timeout=timeout):
            self.gate.ended()
            yield result

    def preflight(self, kinds: Collection[str] = ()) -> None:
        self.backend.preflight(kinds)

    def put_secrets(self, secrets: Mapping[str, str]) -> None:
        self.backend.put_secrets(secrets)

    def logs(self, name: str) -> str:
        return self.backend.logs(name)

    def delete(self, names: Iterable[str]) -> None:
        self.backend.delete(names)

    def close(self) -> None:
        self.backend.close()


def active_counter(backend: Backend, prefix: str) -> Callable[[], int]:
    """The gate's count: the backend's own not-ended jobs named ``prefix``..."""
    if not isinstance(backend, CountsActive):
        raise SluiceInputError(
            f"--backend {backend.name}: cannot count its active jobs (no active_count)"
        )
    return lambda: backend.active_count(prefix)


class Pacer:
    """At least ``interval`` seconds between two calls' returns (monotonic clock)."""

    def __init__(
        self,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = interval
        self._clock, self._sleep = clock, sleep
        self._next: float | None = None

    def __call__(self) -> None:
        if self._next is not None and (delay := self._next - self._clock()) > 0:
            self._sleep(delay)
        self._next = self._clock() + self.interval
