"""The sweep's pictures: where indexes finished, and where the requested memory went.

The figures are drawn from ``SweepTally``, which is fed one index at a time as the
report is written and holds O(bins + tiers): a sweep of a million indexes draws its
peak-memory chart over at most ``MAX_BINS`` bins of neighbouring indexes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.ticker import MaxNLocator

from sluice.accounting import gib_hours, hours_held
from sluice.jobs import Outcome
from sluice.ledger.base import Attempt
from sluice.quantity import GIB
from sluice.report_page import Chart, drawing, write_page
from sluice.sweep.report import SweepReportWriter, SweepSummary

if TYPE_CHECKING:
    from sluice.sweep.execution import SweepExecution

MAX_BINS = 1000  # past this many indexes, the peak chart shows each bin's range and mean


@dataclass
class _Bin:
    """Last attempts of neighbouring indexes: requested memory and peak range, in GiB."""

    requested: float = 0.0
    low: float = float("inf")
    high: float = 0.0
    total: float = 0.0
    count: int = 0

    def add(self, requested: float, peak: float) -> None:
        self.requested = max(self.requested, requested)
        self.low, self.high = min(self.low, peak), max(self.high, peak)
        self.total += peak
        self.count += 1


class SweepTally:
    """What the charts need, accumulated index by index (``add``, ascending indexes)."""

    def __init__(self, first: int, last: int) -> None:
        self.first = first
        self.width = max(1, -(-(last - first + 1) // MAX_BINS))  # indexes per bin
        self.bins: dict[int, _Bin] = {}
        self.used: dict[int, float] = defaultdict(float)
        self.idle: dict[int, float] = defaultdict(float)
        self.failed: dict[int, float] = defaultdict(float)

    def add(self, index: int, attempts: Sequence[Attempt]) -> None:
        """One index's attempts of this sweep, oldest first."""
        last = attempts[-1] if attempts else None
        if last is not None and last.peak_memory_bytes and last.memory_bytes:
            number = (index - self.first) // self.width
            slot = self.bins.setdefault(number, _Bin())
            slot.add(last.memory_bytes / GIB, last.peak_memory_bytes / GIB)
        for attempt in attempts:
            if attempt.tier is None or attempt.outcome is None:
                continue
            if attempt.outcome is Outcome.SUCCEEDED and attempt.peak_memory_bytes:
                peak = min(attempt.peak_memory_bytes, attempt.memory_bytes or 0) / GIB
                self.used[attempt.tier] += peak * hours_held(attempt)
                self.idle[attempt.tier] += gib_hours(attempt) - peak * hours_held(attempt)
            elif attempt.outcome is Outcome.SUCCEEDED:
                self.used[attempt.tier] += gib_hours(attempt)
            else:
                self.failed[attempt.tier] += gib_hours(attempt)


def sweep_charts(summary: SweepSummary, tally: SweepTally) -> list[Chart]:
    """Indexes per final tier; peak against requested memory; GiB-hours used and wasted."""
    charts: list[Chart] = []
    _final_tiers(summary, charts)
    _peak_against_request(tally, charts)
    _gib_hours_by_tier(tally, charts)
    return charts


def _final_tiers(summary: SweepSummary, charts: list[Chart]) -> None:
    succeeded = {int(t): n for t, n in summary.succeeded_by_tier.items() if t != "None"}
    failed = summary.failed
    labels = [f"tier {t}" for t in sorted(succeeded)] + (["failed"] if failed else [])
    counts = [succeeded[t] for t in sorted(succeeded)] + ([failed] if failed else [])
    caption = "Where each index ended: the tier it succeeded at, or failed."
    with drawing("Indexes by final tier", caption, charts) as axes:
        colours = ["#4c78a8"] * len(succeeded) + ["#e45756"] * bool(failed)
        bars = axes.bar(labels, counts, color=colours)
        axes.bar_label(bars)
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.margins(y=0.12)
        axes.set_ylabel("indexes")


def _peak_against_request(tally: SweepTally, charts: list[Chart]) -> None:
    binned = tally.width > 1
    caption = (
        "Each index's last attempt: memory requested (line) and the peak it used (dots); "
        "the gap is memory held and never touched."
    )
    if binned:
        caption = (
            f"Each index's last attempt, in bins of {tally.width:,} neighbouring indexes: the "
            "most memory requested (line), the range of peaks used (band) and their mean; "
            "the gap is memory held and never touched."
        )
    with drawing("Peak against requested memory", caption, charts) as axes:
        numbers = sorted(tally.bins)
        slots = [tally.bins[n] for n in numbers]
        starts = [tally.first + n * tally.width for n in numbers]
        axes.step(
            starts, [s.requested for s in slots], where="mid", color="#4c78a8", label="requested"
        )
        if binned:
            axes.fill_between(
                starts,
                [s.low for s in slots],
                [s.high for s in slots],
                step="mid",
                color="#f58518",
                alpha=0.3,
                label="peak range",
            )
            axes.plot(
                starts, [s.total / s.count for s in slots], color="#f58518", label="mean peak"
            )
        else:
            axes.scatter(starts, [s.high for s in slots], s=6, color="#f58518", label="peak")
        axes.set_xlabel("index")
        axes.set_ylabel("GiB")
        if slots:
            axes.legend(loc="upper left")
        else:
            axes.text(0.5, 0.5, "no peak memory reported", ha="center", transform=axes.transAxes)


def _gib_hours_by_tier(tally: SweepTally, charts: list[Chart]) -> None:
    tiers = sorted({*tally.used, *tally.idle, *tally.failed})
    labels = [f"tier {t}" for t in tiers]
    caption = (
        "Requested GiB x hours held, per tier: used at peak by attempts that succeeded, "
        "held but idle above their peak, and spent on attempts that failed (OOM included)."
    )
    with drawing("GiB-hours used and wasted, per tier", caption, charts) as axes:
        bottom = [0.0] * len(tiers)
        for name, values, colour in (
            ("used", tally.used, "#54a24b"),
            ("idle above peak", tally.idle, "#bab0ac"),
            ("failed attempts", tally.failed, "#e45756"),
        ):
            heights = [values.get(t, 0.0) for t in tiers]
            axes.bar(labels, heights, bottom=bottom, label=name, color=colour)
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        axes.set_ylabel("GiB-hours")
        axes.legend(loc="upper right")


def write_sweep_page(report_dir: Path, summary: SweepSummary, tally: SweepTally) -> Path:
    """``report.html`` for the sweep: the summary's headline and its three charts."""
    facts = [
        f"{summary.succeeded} of {summary.total} indexes succeeded, {summary.failed} failed, "
        f"in {summary.attempts} attempts",
        f"GiB-hours requested: {summary.gib_hours_succeeded:.4f} by succeeded attempts, "
        f"{summary.gib_hours_failed:.4f} by failed ones",
        "Files beside this page: items.jsonl, summary.json, tier<N>-failures.txt",
    ]
    return write_page(report_dir, f"Sweep {summary.run}", facts, sweep_charts(summary, tally))


def write_sweep_reports(
    execution: SweepExecution, report_dir: Path
) -> tuple[SweepSummary, dict[int, int], Path]:
    """Every report file of the sweep, from the ledger a chunk at a time: the summary,
    how many indexes each tier<N>-failures.txt lists, and the page's path."""
    config = execution.config
    writer = SweepReportWriter(report_dir, config.run)
    tally = SweepTally(config.indexes[0], config.indexes[-1])
    for index, attempts in execution.reported():
        writer.add(index, attempts)
        tally.add(index, attempts)
    summary = writer.close()
    page = write_sweep_page(report_dir, summary, tally)
    return summary, dict(writer.failures_by_tier), page
