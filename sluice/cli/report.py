"""`sluice report PATH`: open a run's report.html (a report directory or the page itself)."""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Annotated

import typer

from sluice.cli.common import fail_on_input_errors
from sluice.errors import SluiceInputError
from sluice.report_page import PAGE_NAME


@fail_on_input_errors
def report(
    path: Annotated[Path, typer.Argument(help="A report directory, or its report.html.")],
    open_page: Annotated[
        bool, typer.Option("--open/--no-open", help="Open it in the default browser.")
    ] = True,
) -> None:
    """Print the path of a run's report.html and open it in a browser."""
    page = path / PAGE_NAME if path.is_dir() else path
    if page.name != PAGE_NAME or not page.is_file():
        raise SluiceInputError(f"PATH {str(path)!r}: no {PAGE_NAME} there")
    uri = page.resolve().as_uri()
    print(uri)
    if open_page:
        webbrowser.open(uri)


def register(app: typer.Typer) -> None:
    """Add `sluice report` to the app."""
    app.command("report")(report)
