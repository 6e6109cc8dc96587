"""The ``sluice`` console script: one thin subcommand group per flow."""

import os

import typer

from sluice.cli import chunkedgraph, karabo, server, stac, sweep, watersheds
from sluice.cli.common import fail_on_input_errors
from sluice.settings import sluice_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)


@app.callback()
@fail_on_input_errors
def root() -> None:
    """Sluice: Prefect flows that meter huge batch sweeps into Kubernetes, Nomad or this machine."""
    sluice_settings()  # every SLUICE_* variable checked once, before any command runs


sweep.register(app)
server.register(app)
stac.register(app)
watersheds.register(app)
karabo.register(app)
chunkedgraph.register(app)


def main() -> None:
    # A Prefect client used before the embedded server's URL is set must fail loudly,
    # never start Prefect's per-process temporary server (a second database, seconds).
    os.environ["PREFECT_SERVER_ALLOW_EPHEMERAL_MODE"] = "false"
    app()
