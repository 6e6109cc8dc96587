"""The batch's worker pool: slots for running chunks, as many as a live limit says.

The limit is read (``limit()``: the flow reads its Prefect global concurrency limit) each
time a lane asks for a slot, and again every ``recheck_seconds`` while every slot is
taken, so an operator's resize takes effect at the next chunk. A slot that frees wakes
one waiting lane at once: no polling of a server between a release and the next start.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class PoolStats:
    """How long lanes waited for slots (for the run's log and the benchmark)."""

    acquired: int = 0
    waited_seconds: float = 0.0
    longest_wait_seconds: float = 0.0


class WorkerPool:
    """A counting semaphore whose size is ``limit()``, re-read as described above."""

    def __init__(self, limit: Callable[[], int], recheck_seconds: float = 5.0) -> None:
        self._limit = limit
        self.recheck_seconds = recheck_seconds
        self._busy = 0
        self._freed = threading.Condition()
        self.stats = PoolStats()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for the duration of the ``with`` block."""
        asked = time.monotonic()
        while True:
            size = self._limit()  # outside the lock: a server round trip
            with self._freed:
                if self._busy < size:
                    self._busy += 1
                    waited = time.monotonic() - asked
                    self.stats.acquired += 1
                    self.stats.waited_seconds += waited
                    self.stats.longest_wait_seconds = max(self.stats.longest_wait_seconds, waited)
                    break
                self._freed.wait(self.recheck_seconds)
        try:
            yield
        finally:
            with self._freed:
                self._busy -= 1
                self._freed.notify()
