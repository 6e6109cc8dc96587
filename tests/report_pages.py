"""A report page as a person opens it: `sluice report PATH`, then headless Chromium."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from sluice.cli import app

FIGURES = (
    "return [...document.querySelectorAll('figure')].map(f => ({"
    " title: f.getAttribute('aria-label'),"
    " height: f.querySelector('svg').getBoundingClientRect().height,"
    " text: f.querySelector('svg').textContent}))"
)


def open_report(browser: Any, place: Path, height: int) -> list[dict[str, Any]]:
    """Open ``place``'s report.html through `sluice report` and return its figures (title,
    drawn height, text)."""
    shown = CliRunner().invoke(app, ["report", str(place), "--no-open"])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.strip() == (place / "report.html").resolve().as_uri()
    browser.set_window_size(1000, height)
    browser.get(shown.stdout.strip())
    return browser.execute_script(FIGURES)
