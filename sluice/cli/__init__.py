"""The ``sluice`` console script: one thin subcommand group per flow."""

import typer

from sluice.cli import chunkedgraph, karabo, stac, sweep, watersheds

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
sweep.register(app)
stac.register(app)
watersheds.register(app)
karabo.register(app)
chunkedgraph.register(app)


def main() -> None:
    app()
