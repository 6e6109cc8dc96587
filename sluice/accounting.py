"""Memory accounting: GiB-hours requested by attempts (requests = limits)."""

from __future__ import annotations

from collections.abc import Iterable

from sluice.ledger.base import Attempt
from sluice.quantity import GIB


def hours_held(attempt: Attempt) -> float:
    """How long a finished attempt held its memory, in hours (0 if it has not ended).

    Time held is the runtime's own start to end (process start, pod ``startTime``,
    Nomad task start) when the backend reported them; otherwise, from submission
    to the recorded end, which also counts time spent queued.
    """
    if attempt.finished_at is None:
        return 0.0
    start, end = attempt.runtime_started_at, attempt.runtime_finished_at
    if start is None or end is None:
        start, end = attempt.started_at, attempt.finished_at
    return max((end - start).total_seconds() / 3600, 0.0)


def gib_hours(attempt: Attempt) -> float:
    """Memory requested x time held, for one finished attempt (0 if unknown)."""
    return (attempt.memory_bytes or 0) / GIB * hours_held(attempt)


def total_gib_hours(attempts: Iterable[Attempt]) -> float:
    return sum(map(gib_hours, attempts))
