"""The STAC batch's pictures: outcomes as they arrived, and the admission gate at work."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from sluice.ledger.base import Attempt
from sluice.report_page import Chart, drawing, write_page
from sluice.stac.reports import BatchReport


def stac_charts(attempts: Sequence[Attempt], thresholds: tuple[int, int] | None) -> list[Chart]:
    """Finished jobs by outcome over time; active jobs against the stop/resume thresholds."""
    charts: list[Chart] = []
    ran = [a for a in attempts if a.finished_at is not None]
    origin = min((_began(a) for a in ran), default=None)
    _outcomes_over_time(ran, origin, charts)
    _active_against_thresholds(ran, origin, thresholds, charts)
    return charts


def write_stac_page(
    directory: Path,
    batch: str,
    report: BatchReport,
    attempts: Sequence[Attempt],
    thresholds: tuple[int, int] | None,
) -> Path:
    """``report.html`` beside the seed's report files."""
    summary = report.summary()
    facts = [
        f"{summary['success']} of {summary['items']} items succeeded, {summary['failed']} "
        f"failed ({summary['silent_failures']} silently), {summary['not_found']} not found",
        f"{len(attempts)} jobs"
        + (
            f"; admission stops at {thresholds[0]} active, resumes at {thresholds[1]}"
            if thresholds
            else ""
        ),
        "Files beside this page: the seed's *_aois.txt lists, outcomes.json, summary.json",
    ]
    charts = stac_charts(attempts, thresholds)
    return write_page(directory, f"STAC batch {batch}", facts, charts)


def _began(attempt: Attempt) -> datetime:
    return attempt.runtime_started_at or attempt.started_at


def _minutes(moment: datetime, origin: datetime | None) -> float:
    return (moment - origin).total_seconds() / 60 if origin else 0.0


def _outcomes_over_time(
    ran: Sequence[Attempt], origin: datetime | None, charts: list[Chart]
) -> None:
    caption = "Jobs finished so far, by how they ended, against minutes since the first start."
    with drawing("Outcomes over time", caption, charts) as axes:
        for outcome in sorted({a.outcome for a in ran if a.outcome is not None}):
            ends = sorted(
                _minutes(a.finished_at, origin)
                for a in ran
                if a.outcome is outcome and a.finished_at
            )
            axes.step(ends, range(1, len(ends) + 1), where="post", label=outcome.value)
        axes.set_xlabel("minutes")
        axes.set_ylabel("jobs finished")
        if ran:
            axes.legend(loc="upper left")


def _active_against_thresholds(
    ran: Sequence[Attempt],
    origin: datetime | None,
    thresholds: tuple[int, int] | None,
    charts: list[Chart],
) -> None:
    events = sorted(
        [(_minutes(_began(a), origin), 1) for a in ran]
        + [(_minutes(a.finished_at, origin), -1) for a in ran if a.finished_at]
    )
    times, active, count = [0.0], [0], 0
    for moment, change in events:
        count += change
        times.append(moment)
        active.append(count)
    caption = (
        "Jobs running at each moment; the gate stops submitting at the upper line and "
        "resumes at the lower one."
    )
    with drawing("Active jobs against the admission thresholds", caption, charts) as axes:
        axes.step(times, active, where="post", color="#4c78a8", label="active")
        if thresholds:
            stop, resume = thresholds
            axes.axhline(stop, color="#e45756", linestyle="--", label=f"stop ({stop})")
            axes.axhline(resume, color="#54a24b", linestyle=":", label=f"resume ({resume})")
        axes.set_xlabel("minutes")
        axes.set_ylabel("jobs")
        axes.legend(loc="upper right")
