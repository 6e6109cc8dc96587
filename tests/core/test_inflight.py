"""``bounded_futures``: the one "N in flight, next as one ends" loop."""

from __future__ import annotations

import queue
import threading
from collections import deque
from concurrent.futures import Future

import pytest

from sluice.inflight import Overflow, bounded_futures


def test_at_most_limit_run_each_is_handled_as_it_ends_and_results_add_work() -> None:
    created: queue.SimpleQueue[tuple[int, Future[int]]] = queue.SimpleQueue()
    unfinished: set[int] = set()
    peak = 0

    def submit(n: int) -> Future[int]:
        nonlocal peak
        future: Future[int] = Future()
        unfinished.add(n)
        peak = max(peak, len(unfinished))
        created.put((n, future))
        return future

    def finish(n: int, future: Future[int]) -> None:
        unfinished.discard(n)
        future.set_result(n * 10)

    def finisher() -> None:  # the second job ends before the first, then each as it starts
        first, second = created.get(), created.get()
        finish(*second)
        finish(*first)
        while (item := created.get())[0] != 0:
            finish(*item)

    thread = threading.Thread(target=finisher)
    thread.start()
    todo = deque([1, 2, 3, 4])
    handled = []
    try:
        for n, future in bounded_futures(lambda: todo.popleft() if todo else None, submit, 2):
            handled.append((n, future.result()))
            if n == 3:
                todo.append(5)  # work that a result made ready
    finally:
        created.put((0, Future()))
        thread.join()
    assert handled[:2] == [(2, 20), (1, 10)]
    assert sorted(handled) == [(1, 10), (2, 20), (3, 30), (4, 40), (5, 50)]
    assert peak == 2


def test_nothing_to_do_ends_at_once_and_a_limit_below_one_is_refused() -> None:
    assert list(bounded_futures(lambda: None, lambda _: Future())) == []
    with pytest.raises(ValueError, match="limit 0"):
        next(bounded_futures(lambda: None, lambda _: Future(), 0))


def test_an_overflow_poke_starts_one_more_past_the_limit_up_to_its_ceiling() -> None:
    futures: list[Future[int]] = []
    overflow = Overflow(3, wanted=lambda: True)

    def submit(n: int) -> Future[int]:
        futures.append(Future())
        if n == 0:  # the job pool runs dry three times while the first batch runs
            overflow.poke(), overflow.poke(), overflow.poke()
        if n == 2:
            futures[0].set_result(0)
        if n == 3:
            futures[3].set_result(3)  # ends at once
        return futures[-1]

    todo = deque([0, 1, 2, 3])
    loop = bounded_futures(lambda: todo.popleft() if todo else None, submit, 1, overflow=overflow)
    assert next(loop)[0] == 0
    assert len(futures) == 3  # the limit's one, then one per poke up to the ceiling of 3
    futures[1].set_result(1), futures[2].set_result(2)
    assert [n for n, _ in loop] == [1, 2, 3]  # past the limit only while poked: one at a time


def test_a_poke_no_longer_wanted_starts_nothing() -> None:
    futures: list[Future[int]] = []
    overflow = Overflow(3, wanted=lambda: False)

    def submit(n: int) -> Future[int]:
        futures.append(Future())
        if n == 0:
            overflow.poke()
            futures[0].set_result(0)
        return futures[-1]

    todo = deque([0, 1])
    loop = bounded_futures(lambda: todo.popleft() if todo else None, submit, 1, overflow=overflow)
    assert next(loop)[0] == 0
    assert len(futures) == 1
