"""``bounded_futures``: at most N futures in flight, each handled as it ends.

The one loop behind every "keep N running, start the next as one ends" in Sluice:
ChunkedGraph batches, the jobs of one ChunkedGraph batch, watershed chunks, sweep chunks.
"""

from __future__ import annotations

import itertools
import queue
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

W = TypeVar("W")
F = TypeVar("F", bound="Future")


class Future(Protocol):
    """What is needed of a future: ``concurrent.futures.Future`` and Prefect's futures have it."""

    def add_done_callback(self, fn: Callable[[Any], object], /) -> Any: ...


def bounded_futures(
    next_work: Callable[[], W | None], submit: Callable[[W], F], limit: int | None = None
) -> Iterator[tuple[W, F]]:
    """Submit work while fewer than ``limit`` futures run (None: no limit) and yield
    ``(work, future)`` as each future ends, in the order they end.

    ``next_work`` gives the next piece of work, or None when there is none right now; it
    is asked again after the caller has handled each ended future, so work a result made
    ready starts at once. The iteration stops when nothing runs and ``next_work`` gives
    None. Only this generator's thread submits; callbacks merely queue the ending.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit {limit}: must be at least 1")
    ended: queue.SimpleQueue[int] = queue.SimpleQueue()
    running: dict[int, tuple[W, F]] = {}
    numbers = itertools.count()
    while True:
        while limit is None or len(running) < limit:
            work = next_work()
            if work is None:
                break
            future = submit(work)
            number = next(numbers)
            running[number] = (work, future)
            future.add_done_callback(lambda _, number=number: ended.put(number))
        if not running:
            return
        yield running.pop(ended.get())
