"""The sweep's pictures: where indexes finished, and where the requested memory went."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.ticker import MaxNLocator

from sluice.accounting import gib_hours, hours_held
from sluice.jobs import Outcome
from sluice.ledger.base import Attempt
from sluice.quantity import GIB
from sluice.report_page import Chart, drawing, write_page
from sluice.sweep.report import IndexReport, SweepSummary

_DENSE = 2000  # more points than this are drawn as pixels inside the SVG


def sweep_charts(
    items: Sequence[IndexReport], attempts_by_item: Mapping[str, Sequence[Attempt]]
) -> list[Chart]:
    """Indexes per final tier; peak against requested memory; GiB-hours used and wasted.
    ``attempts_by_item``: each index's attempts of this sweep, oldest first."""
    charts: list[Chart] = []
    _final_tiers(items, charts)
    _peak_against_request([tried[-1] for tried in attempts_by_item.values() if tried], charts)
    _gib_hours_by_tier([a for tried in attempts_by_item.values() for a in tried], charts)
    return charts


def _final_tiers(items: Sequence[IndexReport], charts: list[Chart]) -> None:
    succeeded = Counter(i.tier for i in items if i.outcome == "succeeded" and i.tier is not None)
    failed = sum(i.outcome != "succeeded" for i in items)
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


def _peak_against_request(last: Sequence[Attempt], charts: list[Chart]) -> None:
    measured = sorted(
        (a for a in last if a.peak_memory_bytes and a.memory_bytes),
        key=lambda a: int(a.item),
    )
    caption = (
        "Each index's last attempt: memory requested (line) and the peak it used (dots); "
        "the gap is memory held and never touched."
    )
    with drawing("Peak against requested memory", caption, charts) as axes:
        indexes = [int(a.item) for a in measured]
        requested = [(a.memory_bytes or 0) / GIB for a in measured]
        peaks = [(a.peak_memory_bytes or 0) / GIB for a in measured]
        axes.step(indexes, requested, where="mid", color="#4c78a8", label="requested")
        dense = len(measured) > _DENSE
        axes.scatter(indexes, peaks, s=6, color="#f58518", label="peak", rasterized=dense)
        axes.set_xlabel("index")
        axes.set_ylabel("GiB")
        if measured:
            axes.legend(loc="upper left")
        else:
            axes.text(0.5, 0.5, "no peak memory reported", ha="center", transform=axes.transAxes)


def _gib_hours_by_tier(attempts: Sequence[Attempt], charts: list[Chart]) -> None:
    used: dict[int, float] = defaultdict(float)
    idle: dict[int, float] = defaultdict(float)
    failed: dict[int, float] = defaultdict(float)
    for attempt in attempts:
        if attempt.tier is None or attempt.outcome is None:
            continue
        if attempt.outcome is Outcome.SUCCEEDED and attempt.peak_memory_bytes:
            peak = min(attempt.peak_memory_bytes, attempt.memory_bytes or 0) / GIB
            used[attempt.tier] += peak * hours_held(attempt)
            idle[attempt.tier] += gib_hours(attempt) - peak * hours_held(attempt)
        elif attempt.outcome is Outcome.SUCCEEDED:
            used[attempt.tier] += gib_hours(attempt)
        else:
            failed[attempt.tier] += gib_hours(attempt)
    tiers = sorted({*used, *idle, *failed})
    labels = [f"tier {t}" for t in tiers]
    caption = (
        "Requested GiB x hours held, per tier: used at peak by attempts that succeeded, "
        "held but idle above their peak, and spent on attempts that failed (OOM included)."
    )
    with drawing("GiB-hours used and wasted, per tier", caption, charts) as axes:
        bottom = [0.0] * len(tiers)
        for name, values, colour in (
            ("used", used, "#54a24b"),
            ("idle above peak", idle, "#bab0ac"),
            ("failed attempts", failed, "#e45756"),
        ):
            heights = [values.get(t, 0.0) for t in tiers]
            axes.bar(labels, heights, bottom=bottom, label=name, color=colour)
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        axes.set_ylabel("GiB-hours")
        axes.legend(loc="upper right")


def write_sweep_page(
    report_dir: Path,
    summary: SweepSummary,
    items: Sequence[IndexReport],
    attempts_by_item: Mapping[str, Sequence[Attempt]],
) -> Path:
    """``report.html`` for the sweep: the summary's headline and its three charts."""
    facts = [
        f"{summary.succeeded} of {summary.total} indexes succeeded, {summary.failed} failed, "
        f"in {summary.attempts} attempts",
        f"GiB-hours requested: {summary.gib_hours_succeeded:.4f} by succeeded attempts, "
        f"{summary.gib_hours_failed:.4f} by failed ones",
        "Files beside this page: items.jsonl, summary.json, tier<N>-failures.txt",
    ]
    charts = sweep_charts(items, attempts_by_item)
    return write_page(report_dir, f"Sweep {summary.run}", facts, charts)
