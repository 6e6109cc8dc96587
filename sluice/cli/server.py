"""`sluice server`: the embedded Prefect server that other commands start on demand."""

from __future__ import annotations

import os

import typer

from sluice import server

app = typer.Typer(no_args_is_help=True, help=__doc__)


def _port() -> int:
    return int(os.environ.get("SLUICE_SERVER_PORT", server.DEFAULT_PORT))


@app.command()
def start() -> None:
    """Start the embedded server (or find it running) and print its UI address."""
    started = server.start(server.sluice_home(), _port())
    print(f"Prefect UI: {started.ui_url}")


@app.command()
def status() -> None:
    """Say whether the embedded server answers."""
    embedded = server.EmbeddedServer(home=server.sluice_home(), port=_port())
    if not server.is_healthy(embedded.api_url):
        print(f"not running (would listen on {embedded.ui_url})")
        raise typer.Exit(1)
    print(f"running: {embedded.ui_url}")


@app.command()
def stop() -> None:
    """Stop the embedded server started under $SLUICE_HOME."""
    server.stop(server.sluice_home())


def register(root: typer.Typer) -> None:
    """Add `sluice server` to the app."""
    root.add_typer(app, name="server")
