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

    def add_done_callback(self, fn: Callable[[Any], None], /) -> Any: ...


class Overflow:
    """Room for one more piece of work past the limit (up to ``ceiling`` in flight) each
    time :meth:`poke` is called, from any thread, while ``wanted()`` still holds: e.g. a
    job pool that ran dry while every batch in flight waits on its own last jobs."""

    def __init__(self, ceiling: int, wanted: Callable[[], bool]) -> None:
        self.ceiling, self.wanted = ceiling, wanted
        self._wake: Callable[[], None] = lambda: None

    def poke(self) -> None:
        self._wake()


_POKED = -1


def bounded_futures(
    next_work: Callable[[], W | None],
    submit: Callable[[W], F],
    limit: int | None = None,
    *,
    overflow: Overflow | None = None,
) -> Iterator[tuple[W, F]]:
    """Submit work while fewer than ``limit`` futures run (None: no limit) and yield
    ``(work, future)`` as each future ends, in the order they end.

    ``next_work`` gives the next piece of work, or None when there is none right now; it
    is asked again after the caller has handled each ended future, so work a result made
    ready starts at once. The iteration stops when nothing runs and ``next_work`` gives
    None. Only this generator's thread submits; callbacks merely queue the ending (and an
    ``overflow`` poke, which starts at most one more piece of work past ``limit``).
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit {limit}: must be at least 1")
    ended: queue.SimpleQueue[int] = queue.SimpleQueue()
    running: dict[int, tuple[W, F]] = {}
    numbers = itertools.count()

    def start(work: W) -> None:
        future = submit(work)
        number = next(numbers)
        running[number] = (work, future)

        def done(_: object, number: int = number) -> None:
            ended.put(number)

        future.add_done_callback(done)

    if overflow is not None:
        overflow._wake = lambda: ended.put(_POKED)
    while True:
        while limit is None or len(running) < limit:
            work = next_work()
            if work is None:
                break
            start(work)
        if not running:
            return
        number = ended.get()
        if number != _POKED:
            yield running.pop(number)
        elif _room_past_limit(overflow, len(running)) and (work := next_work()) is not None:
            start(work)


def _room_past_limit(overflow: Overflow | None, running: int) -> bool:
    return overflow is not None and running < overflow.ceiling and overflow.wanted()
