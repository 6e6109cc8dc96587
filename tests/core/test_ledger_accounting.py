"""GiB-hours are charged from the runtime's own start and end, not from submission."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sluice.accounting import gib_hours, total_gib_hours
from sluice.jobs import JobResult, Outcome
from sluice.ledger.base import Ledger
from tests.core.test_ledger import ledger, ledger_url, planned, postgres_server  # noqa: F401

GIB = 2**30


def test_the_runtimes_own_start_and_end_are_recorded(ledger: Ledger) -> None:  # noqa: F811
    (ran, unknown) = ledger.begin("run-a", "wl", planned("0", "1", memory=4 * GIB))
    start = datetime.now(UTC) + timedelta(seconds=30)  # queued for 30 s after submission
    end = start + timedelta(minutes=15)
    ledger.finish_many(
        [
            (
                ran,
                JobResult(name="j", outcome=Outcome.SUCCEEDED, started_at=start, finished_at=end),
            ),
            (unknown, JobResult(name="j", outcome=Outcome.LOST)),
        ]
    )
    by_item = {a.item: a for a in ledger.attempts("run-a")}
    assert (by_item["0"].runtime_started_at, by_item["0"].runtime_finished_at) == (start, end)
    assert by_item["0"].finished_at == end
    assert gib_hours(by_item["0"]) == pytest.approx(4 * 0.25)  # 4 GiB for 15 minutes
    assert by_item["1"].runtime_started_at is None and by_item["1"].runtime_finished_at is None
    submitted_to_end = by_item["1"].finished_at - by_item["1"].started_at
    assert gib_hours(by_item["1"]) == pytest.approx(4 * submitted_to_end.total_seconds() / 3600)
    assert total_gib_hours(by_item.values()) == gib_hours(by_item["0"]) + gib_hours(by_item["1"])


def test_queue_time_is_not_charged(ledger: Ledger) -> None:  # noqa: F811
    (attempt_id,) = ledger.begin("run-a", "wl", planned("0", memory=GIB))
    submitted = ledger.attempts("run-a")[0].started_at
    start = submitted + timedelta(hours=2)  # waited two hours for a node
    result = JobResult(
        name="j", outcome=Outcome.OOM, started_at=start, finished_at=start + timedelta(hours=1)
    )
    ledger.finish(attempt_id, result)
    (attempt,) = ledger.attempts("run-a")
    assert gib_hours(attempt) == pytest.approx(1.0)


def test_running_or_memoryless_attempts_cost_nothing(ledger: Ledger) -> None:  # noqa: F811
    ledger.begin("run-a", "wl", planned("0", memory=GIB) + planned("1", memory=None))
    assert [gib_hours(a) for a in ledger.attempts("run-a")] == [0.0, 0.0]
