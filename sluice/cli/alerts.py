"""`sluice alerts install`: be told when a flow run of a Sluice deployment fails."""

from __future__ import annotations

from typing import Annotated

import typer

from sluice.cli.common import fail_on_input_errors
from sluice.errors import SluiceInputError

alerts_app = typer.Typer(help="Notifications for failed or crashed Sluice runs.")


@alerts_app.command("install")
@fail_on_input_errors
def install(
    notify: Annotated[
        str,
        typer.Option(
            metavar="TYPE/NAME",
            help="A saved Prefect notification block, e.g. slack-webhook/ops.",
        ),
    ],
) -> None:
    """Create (or replace) the automation that notifies on every Failed or Crashed flow run
    of a Sluice deployment (tag `sluice`), including the hourly Karabo run."""
    if notify.count("/") != 1 or not all(notify.split("/")):
        raise SluiceInputError(f"--notify {notify!r}: expected TYPE/NAME, e.g. slack-webhook/ops")
    from sluice.alerts import install as install_automation

    automation, automation_id, replaced = install_automation(notify)
    verb = "replaced" if replaced else "created"
    print(f"automation {automation.name!r} {verb} ({automation_id}): notifies {notify}")


def register(app: typer.Typer) -> None:
    """Add `sluice alerts` to the app."""
    app.add_typer(alerts_app, name="alerts")
