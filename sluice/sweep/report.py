"""The sweep's report files: items.jsonl, tier<N>-failures.txt, summary.json."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from sluice.accounting import total_gib_hours
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


def index_report(index: int, attempts: list[Attempt]) -> IndexReport:
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


def build_reports(
    run: str, indexes: Sequence[int], attempts_by_item: dict[str, list[Attempt]]
) -> tuple[list[IndexReport], SweepSummary, dict[int, list[int]]]:
    """Per-index lines, the summary, and each tier's failed indexes."""
    items = [index_report(i, attempts_by_item.get(str(i), [])) for i in indexes]
    failures_by_tier: dict[int, set[int]] = defaultdict(set)
    every_attempt = [a for i in indexes for a in attempts_by_item.get(str(i), [])]
    for attempt in every_attempt:
        if attempt.outcome not in (None, Outcome.SUCCEEDED) and attempt.tier is not None:
            failures_by_tier[attempt.tier].add(int(attempt.item))
    succeeded = [a for a in every_attempt if a.outcome is Outcome.SUCCEEDED]
    failed = [a for a in every_attempt if a.outcome not in (None, Outcome.SUCCEEDED)]
    summary = SweepSummary(
        run=run,
        total=len(items),
        succeeded=sum(r.outcome == "succeeded" for r in items),
        failed=sum(r.outcome == "failed" for r in items),
        by_reason=dict(Counter(r.reason or "succeeded" for r in items)),
        succeeded_by_tier=dict(Counter(str(r.tier) for r in items if r.outcome == "succeeded")),
        attempts=len(every_attempt),
        gib_hours_succeeded=round(total_gib_hours(succeeded), 6),
        gib_hours_failed=round(total_gib_hours(failed), 6),
    )
    return items, summary, {t: sorted(s) for t, s in sorted(failures_by_tier.items())}


def write_reports(
    report_dir: Path,
    items: list[IndexReport],
    summary: SweepSummary,
    failures_by_tier: dict[int, list[int]],
) -> Path:
    """Write the three kinds of report file; returns the directory."""
    report_dir.mkdir(parents=True, exist_ok=True)
    with (report_dir / "items.jsonl").open("w") as out:
        for item in items:
            out.write(item.model_dump_json() + "\n")
    for stale in report_dir.glob("tier*-failures.txt"):
        stale.unlink()
    for tier, failed in failures_by_tier.items():
        (report_dir / f"tier{tier}-failures.txt").write_text("".join(f"{i}\n" for i in failed))
    (report_dir / "summary.json").write_text(json.dumps(summary.model_dump(), indent=2) + "\n")
    return report_dir
