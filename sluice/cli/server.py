"""`sluice server`: the embedded Prefect server that other commands start on demand."""

from __future__ import annotations

import json
import os
import shlex
from typing import Annotated, Any

import typer

from sluice.cli.common import fail_on_input_errors

# sluice.server and sluice.settings load inside the commands: `sluice --help` stays quick.

app = typer.Typer(no_args_is_help=True, help=__doc__)


def _other_server() -> str | None:
    """``PREFECT_API_URL`` when it points flows at another server than this home's."""
    from sluice import server

    url = os.environ.get("PREFECT_API_URL")
    return url if url and os.environ.get("PREFECT_PROFILE") != server.PROFILE else None


def _elsewhere() -> str:
    """A note when flows would use another server (``PREFECT_API_URL``)."""
    url = _other_server()
    return f"; note: PREFECT_API_URL={url} is set, so flows use that server instead" if url else ""


def _port_note(port: int) -> str:
    from sluice import server

    if server.is_healthy(f"http://127.0.0.1:{port}/api"):
        return f"; port {port} is answered by another Prefect server (not this home's)"
    return ""


@app.command()
@fail_on_input_errors
def start() -> None:
    """Start the embedded server (or find it running) and print its UI address."""
    from sluice import server
    from sluice.settings import sluice_settings

    settings = sluice_settings()
    started = server.start(settings.home, settings.server_port)
    print(f"Prefect UI: {started.ui_url}{_elsewhere()}")
    print(f"UI sign-in: the PREFECT_API_AUTH_STRING in {server.profiles_path(settings.home)}")


@app.command()
@fail_on_input_errors
def status(
    json_output: Annotated[
        bool, typer.Option("--json", help="Print JSON (keys in docs/cli.md).")
    ] = False,
) -> None:
    """Say whether this home's embedded server runs and answers (exit 1 when not)."""
    from sluice import server
    from sluice.settings import sluice_settings

    settings = sluice_settings()
    record = server.read_record(settings.home)
    found: dict[str, Any] = {
        "state": "stopped",
        "home": str(settings.home),
        "pid": None,
        "port": settings.server_port,
        "ui_url": None,
        "port_taken": False,
        "prefect_api_url": _other_server(),
    }
    if record is not None and record.pid is not None and record.port is not None:
        ours = server.EmbeddedServer(home=settings.home, port=record.port)
        answers = server.answers_as_ours(ours)
        found |= {
            "state": "running" if answers else "not-answering",
            "pid": record.pid,
            "port": record.port,
            "ui_url": ours.ui_url if answers else None,
        }
    else:
        found["port_taken"] = server.is_healthy(f"http://127.0.0.1:{settings.server_port}/api")
    if json_output:
        typer.echo(json.dumps(found))
    elif found["state"] == "running":
        print(
            f"running: {found['ui_url']} (pid {found['pid']}, home {settings.home}){_elsewhere()}"
        )
    elif found["state"] == "not-answering":
        print(f"starting or not answering: pid {found['pid']}, port {found['port']}{_elsewhere()}")
    else:
        port = settings.server_port
        print(
            f"not running for {settings.home} (would listen on http://127.0.0.1:{port})"
            f"{_port_note(port)}{_elsewhere()}"
        )
    if found["state"] != "running":
        raise typer.Exit(1)


@app.command()
@fail_on_input_errors
def stop() -> None:
    """Stop the embedded server started under $SLUICE_HOME, and say what was done."""
    from sluice import server
    from sluice.settings import sluice_settings

    settings = sluice_settings()
    record = server.read_record(settings.home)
    ours = record is not None and record.port is not None
    print(server.stop(settings.home) + ("" if ours else _port_note(settings.server_port)))


@app.command("env")
@fail_on_input_errors
def env_exports() -> None:
    """Print shell exports that point `prefect` and Python at this home's server:
    eval "$(sluice server env)". The credential stays in its 0600 profile, never printed."""
    from sluice import server
    from sluice.settings import sluice_settings

    settings = sluice_settings()
    record = server.read_record(settings.home)
    port = record.port if record is not None and record.port else settings.server_port
    embedded = server.EmbeddedServer(home=settings.home, port=port)
    exports = {**server.server_environment(settings.home), "PREFECT_API_URL": embedded.api_url}
    for key, value in exports.items():
        print(f"export {key}={shlex.quote(value)}")


def register(root: typer.Typer) -> None:
    """Add `sluice server` to the app."""
    root.add_typer(app, name="server")
