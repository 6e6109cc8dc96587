"""Memory accounting: GiB-hours requested by attempts (requests = limits)."""

from __future__ import annotations

from collections.abc import Iterable

from sluice.ledger.base import Attempt
from sluice.quantity import GIB


def gib_hours(attempt: Attempt) -> float:
    """Memory requested x time held, for one finished attempt (0 if unknown)."""
    if not attempt.memory_bytes or attempt.finished_at is None:
        return 0.0
    hours = (attempt.finished_at - attempt.started_at).total_seconds() / 3600
    return attempt.memory_bytes / GIB * max(hours, 0.0)


def total_gib_hours(attempts: Iterable[Attempt]) -> float:
    return sum(map(gib_hours, attempts))
