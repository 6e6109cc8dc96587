"""The ChunkedGraph ingest's picture: done / count per layer over the table's history."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sluice.chunkedgraph.history import History
from sluice.chunkedgraph.tracker import TableState
from sluice.report_page import Chart, drawing, write_page


def write_table_page(directory: Path, table: str, state: TableState, history: History) -> Path:
    """``report.html`` beside ``report.md`` in the table's state folder."""
    grid = state.grid
    done = sum(state.done_count.values())
    total = sum(grid.count(layer) for layer in grid.layers)
    facts = [
        f"{done:,} of {total:,} chunks done in layers {grid.layers[0]}-{grid.layers[-1]}, "
        f"{len(state.failures):,} failed",
        *(
            f"layer {layer}: {state.done_count[layer]:,} / {grid.count(layer):,}"
            for layer in grid.layers
        ),
    ]
    if history.samples:
        first, last = history.samples[0].at, history.samples[-1].at
        facts.append(
            f"{len(history.runs)} runs from {_utc(first)} to {_utc(last)}; "
            f"{len(history.samples)} samples (one per {history.every:g} s at most, and each run's "
            "start and end)"
        )
    facts.append("Beside this page: report.md (the failed chunks), table.json, state.bin")
    charts: list[Chart] = []
    _done_over_time(state, history, charts)
    return write_page(directory, f"ChunkedGraph ingest {table}", facts, charts)


def _utc(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _done_over_time(state: TableState, history: History, charts: list[Chart]) -> None:
    origin = history.samples[0].at if history.samples else 0.0
    span = (history.samples[-1].at - origin) if history.samples else 0.0
    unit, seconds = ("hours", 3600.0) if span > 3 * 3600 else ("minutes", 60.0)
    times = [(s.at - origin) / seconds for s in history.samples]
    caption = (
        "Share of each layer's chunks done, since the table's first run; dotted lines mark "
        "where a run started (or resumed)."
    )
    with drawing("Done / count per layer over time", caption, charts) as axes:
        for position, layer in enumerate(history.layers):
            count = state.grid.count(layer)
            shares = [100.0 * s.done[position] / count for s in history.samples]
            width = max(3.0 - 0.4 * position, 1.0)  # lower layers wider: lines that coincide
            label = f"layer {layer} ({count:,})"  # stay visible
            axes.step(times, shares, where="post", linewidth=width, label=label)
        for start in history.runs:
            if start >= origin:
                axes.axvline((start - origin) / seconds, color="#999", linestyle=":")
        axes.set_ylim(-2, 102)
        axes.set_xlabel(f"{unit} since the first run")
        axes.set_ylabel("% of the layer done")
        if history.samples:
            axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
