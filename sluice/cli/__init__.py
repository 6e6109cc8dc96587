"""The ``sluice`` console script: one thin subcommand group per flow."""

import os
import sys
from typing import Annotated, Any

import typer
import typer.core
from typer._click.exceptions import (  # Typer 0.29 vendors Click
    ClickException,
    NoArgsIsHelpError,
    UsageError,
)

from sluice.cli import (
    alerts,
    chunkedgraph,
    karabo,
    logs,
    report,
    runs,
    server,
    stac,
    sweep,
    watersheds,
)
from sluice.cli.common import fail_on_input_errors, set_debug


class _OneLineErrors(typer.core.TyperGroup):
    """Click's own refusals (a value of the wrong type, an unknown option, a missing
    argument) as one ``error:`` line and exit 2, like every other bad input."""

    def main(self, *args: Any, standalone_mode: bool = True, **extra: Any) -> Any:
        extra["standalone_mode"] = False  # Click's handling is replaced below
        if not standalone_mode:
            return super().main(*args, **extra)
        try:
            code = super().main(*args, **extra)
        except NoArgsIsHelpError as error:  # `sluice watersheds` alone: its help
            error.show()
            sys.exit(error.exit_code)
        except UsageError as error:
            print(f"error: {error.format_message()}", file=sys.stderr)
            sys.exit(error.exit_code)
        except ClickException as error:
            error.show()
            sys.exit(error.exit_code)
        except typer.Abort:
            print("Aborted!", file=sys.stderr)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


# Plain Click help: option names are never cut to fit 80 columns (Rich's tables cut them).
app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, cls=_OneLineErrors)


def _usage_name(argument: typer.core.TyperArgument) -> str:
    """Click's usage convention, ``BATCH`` / ``[BATCH]``, instead of Typer's ``{batch}``."""
    name = (argument.metavar or argument.name or "").upper()
    name = name if argument.required else f"[{name}]"
    return name + ("..." if argument.nargs != 1 else "")


typer.core.TyperArgument._usage_display_name = _usage_name  # type: ignore[method-assign,assignment]  # a deliberate patch of Typer


@app.callback()
@fail_on_input_errors
def root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks of expected failures and bad input.")
    ] = False,
) -> None:
    """Sluice: Prefect flows that meter huge batch sweeps into Kubernetes, Nomad or this machine."""
    from sluice.settings import sluice_settings

    set_debug(debug)
    sluice_settings()  # every SLUICE_* variable checked once, before any command runs


sweep.register(app)
server.register(app)
stac.register(app)
watersheds.register(app)
karabo.register(app)
chunkedgraph.register(app)
runs.register(app)
logs.register(app)
report.register(app)
alerts.register(app)


def main() -> None:
    # A Prefect client used before the embedded server's URL is set must fail loudly,
    # never start Prefect's per-process temporary server (a second database, seconds).
    os.environ["PREFECT_SERVER_ALLOW_EPHEMERAL_MODE"] = "false"
    try:
        app()
    finally:  # a command that used Prefect ends with its logs and events sent, quietly
        if "prefect" in sys.modules:
            from sluice.server import settle_prefect_queues

            settle_prefect_queues()
