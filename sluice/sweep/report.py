"""The sweep's report files: items.jsonl, tier<N>-failures.txt, summary.json.

Written as the ledger is read, one chunk of indexes at a time (``SweepReportWriter``):
memory stays O(chunk + tiers) however many indexes the sweep has.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from pydantic import BaseModel

from sluice.accounting import gib_hours
from sluice.jobs import Outcome
from sluice.ledger.base import Attempt
from sluice.quantity import format_memory


class IndexReport(BaseModel):
    """One line of items.jsonl."""

    index: int
    outcome: str
    reason: str | None
    tier: int | None
    memory: str | None
    attempts: int
    job_name: str | None
    peak_memory_bytes: int | None


class SweepSummary(BaseModel):
    """summary.json."""

    run: str
    total: int
    succeeded: int
    failed: int
    by_reason: dict[str, int]
    succeeded_by_tier: dict[str, int]
    attempts: int
    gib_hours_succeeded: float
    gib_hours_failed: float


def index_report(index: int, attempts: Sequence[Attempt]) -> IndexReport:
    last = attempts[-1] if attempts else None
    succeeded = last is not None and last.outcome is Outcome.SUCCEEDED
    reason: str | None
    if last is None:
        reason = "not-run"
    elif last.running:
        reason = "running"
    else:
        reason = last.reason
    return IndexReport(
        index=index,
        outcome="succeeded" if succeeded else "failed",
        reason=None if succeeded else reason,
        tier=last.tier if last else None,
        memory=format_memory(last.memory_bytes) if last and last.memory_bytes else None,
        attempts=len(attempts),
        job_name=last.job_name if last else None,
        peak_memory_bytes=last.peak_memory_bytes if last else None,
    )


class SweepReportWriter:
    """Streams the report files: ``add`` each index in ascending order with its attempts
    (oldest first), then ``close`` writes summary.json and returns the summary."""

    def __init__(self, report_dir: Path, run: str) -> None:
        report_dir.mkdir(parents=True, exist_ok=True)
        for stale in report_dir.glob("tier*-failures.txt"):
            stale.unlink()
        self.report_dir, self.run = report_dir, run
        self._items = (report_dir / "items.jsonl").open("w")
        self._failures: dict[int, IO[str]] = {}
        self._reasons: Counter[str] = Counter()
        self._succeeded_tiers: Counter[str] = Counter()
        self.failures_by_tier: Counter[int] = Counter()  # lines of each tier<N>-failures.txt
        self._total = self._attempts = 0
        self._gib_hours = {True: 0.0, False: 0.0}  # by succeeded

    def add(self, index: int, attempts: Sequence[Attempt]) -> IndexReport:
        """One index's line, its failed tiers and its share of the totals."""
        report = index_report(index, attempts)
        self._items.write(report.model_dump_json() + "\n")
        self._total += 1
        self._attempts += len(attempts)
        self._reasons[report.reason or "succeeded"] += 1
        if report.outcome == "succeeded":
            self._succeeded_tiers[str(report.tier)] += 1
        failed_tiers = set()
        for attempt in attempts:
            if attempt.outcome is None:
                continue
            succeeded = attempt.outcome is Outcome.SUCCEEDED
            self._gib_hours[succeeded] += gib_hours(attempt)
            if not succeeded and attempt.tier is not None:
                failed_tiers.add(attempt.tier)
        for tier in sorted(failed_tiers):
            if tier not in self._failures:
                self._failures[tier] = (self.report_dir / f"tier{tier}-failures.txt").open("w")
            self._failures[tier].write(f"{index}\n")
            self.failures_by_tier[tier] += 1
        return report

    def close(self) -> SweepSummary:
        """Close the files and write summary.json; the summary."""
        for out in (self._items, *self._failures.values()):
            out.close()
        succeeded = sum(self._succeeded_tiers.values())
        summary = SweepSummary(
            run=self.run,
            total=self._total,
            succeeded=succeeded,
            failed=self._total - succeeded,
            by_reason=dict(self._reasons),
            succeeded_by_tier=dict(self._succeeded_tiers),
            attempts=self._attempts,
            gib_hours_succeeded=round(self._gib_hours[True], 6),
            gib_hours_failed=round(self._gib_hours[False], 6),
        )
        (self.report_dir / "summary.json").write_text(
            json.dumps(summary.model_dump(), indent=2) + "\n"
        )
        return summary
