"""The worker pool: a freed slot goes to a waiting lane at once; the limit is live."""

from __future__ import annotations

import threading

from sluice.watersheds.pool import WorkerPool


def _lane(pool: WorkerPool, acquired: threading.Event, release: threading.Event) -> None:
    with pool.slot():
        acquired.set()
        release.wait(30)


def test_a_freed_slot_goes_to_the_waiting_lane():
    asked = threading.Event()
    order: list[str] = []

    def limit() -> int:
        if threading.current_thread().name == "second":
            asked.set()
        return 1

    pool = WorkerPool(limit, recheck_seconds=60)  # only the release can wake the lane
    first = pool.slot()
    first.__enter__()
    got, done = threading.Event(), threading.Event()
    second = threading.Thread(target=_lane, args=(pool, got, done), name="second")
    second.start()
    assert asked.wait(30)
    assert not got.is_set()  # the only slot is held
    order.append("released")
    first.__exit__(None, None, None)
    assert got.wait(30)
    order.append("acquired")
    done.set()
    second.join(30)

    assert order == ["released", "acquired"]
    assert pool.stats.acquired == 2


def test_a_raised_limit_admits_a_waiting_lane_while_the_slot_is_held():
    size = [1]
    pool = WorkerPool(lambda: size[0], recheck_seconds=0.01)
    held, release = threading.Event(), threading.Event()
    first = threading.Thread(target=_lane, args=(pool, held, release))
    first.start()
    assert held.wait(30)
    got, done = threading.Event(), threading.Event()
    second = threading.Thread(target=_lane, args=(pool, got, done))
    second.start()

    size[0] = 2  # the operator's `prefect gcl update`
    assert got.wait(30)
    assert not release.is_set()  # the first lane still holds its slot

    release.set()
    done.set()
    first.join(30)
    second.join(30)
    assert pool.stats.acquired == 2


def test_a_lowered_limit_holds_back_new_lanes():
    size, asked = [2], threading.Event()

    def limit() -> int:
        if threading.current_thread().name == "late":
            asked.set()
        return size[0]

    pool = WorkerPool(limit, recheck_seconds=60)
    got, done = threading.Event(), threading.Event()
    with pool.slot():
        size[0] = 1  # lowered while one slot is held: no room for a second lane
        lane = threading.Thread(target=_lane, args=(pool, got, done), name="late")
        lane.start()
        assert asked.wait(30)
        assert not got.is_set()
    assert got.wait(30)
    done.set()
    lane.join(30)
