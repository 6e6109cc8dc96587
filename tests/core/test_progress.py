"""The one progress implementation: the Prefect artifact, and what a person watching sees."""

from __future__ import annotations

import io
from collections.abc import Callable

import httpx
from prefect import flow
from rich.console import Console
from sluice.tasks.reports import ProgressReporter, Terminal


@flow
def run_in_a_flow(body: Callable[[], None]) -> None:
    """Progress artifacts belong to a flow run."""
    body()


def _artifact(prefect_api: str, description: str) -> float:
    found = httpx.post(
        f"{prefect_api}/artifacts/filter", json={"artifacts": {"type": {"any_": ["progress"]}}}
    ).json()
    (data,) = [a["data"] for a in found if a["description"] == description]
    return data


def test_off_a_terminal_a_line_every_n_seconds_with_outcomes_rate_and_eta(prefect_api) -> None:
    now, lines = [0.0], []
    terminal = Terminal(
        lines.append, console=Console(file=io.StringIO()), every=30, clock=lambda: now[0]
    )
    run_in_a_flow(lambda: _count(terminal, now, lines))
    assert lines[-1] == "sweep/x: 4 / 10 (3 succeeded, 1 failed), 0.01/s"  # the last line
    assert _artifact(prefect_api, "sweep/x: 4 / 10") == 40.0  # the artifact stays


def _count(terminal: Terminal, now: list[float], lines: list[str]) -> None:
    with ProgressReporter(10, "sweep/x", terminal=terminal) as progress:
        progress.advance(outcome="succeeded")
        now[0] = 10.0
        progress.advance(outcome="succeeded")
        assert lines == []  # not yet 30 s
        now[0] = 60.0
        progress.advance(outcome="failed")
        assert lines == ["sweep/x: 3 / 10 (2 succeeded, 1 failed), 0.05/s, ETA 0:02:20"]
        now[0] = 70.0
        progress.advance(outcome="succeeded")
        assert len(lines) == 1  # 10 s after the last line
        now[0] = 200.0
        progress.update(4)
        assert lines[-1] == "sweep/x: 4 / 10 (3 succeeded, 1 failed), 0.02/s, ETA 0:05:00"
        now[0] = 300.0
        progress.update(4)  # nothing moved since the last line: none
        assert len(lines) == 2


def test_on_a_terminal_a_live_bar_with_counts_by_outcome(prefect_api) -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120)
    terminal = Terminal(lambda line: None, console=console)

    def items() -> None:
        with ProgressReporter(3, "stac/b: items", terminal=terminal) as progress:
            for outcome in ("succeeded", "failed", "succeeded"):
                progress.advance(outcome=outcome)

    run_in_a_flow(items)
    shown = screen.getvalue()
    assert "stac/b: items" in shown and "3/3" in shown
    assert "2 succeeded, 1 failed" in shown and "/s" in shown and "ETA" in shown
    assert _artifact(prefect_api, "stac/b: items: 3 / 3") == 100.0
