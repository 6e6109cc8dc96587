"""`sluice karabo estimate|run`: the Karabo SKA-MID AA* simulation and ingest.

Both commands' options are the flow's parameters (``flows/karabo.py``), derived by
:mod:`sluice.cli.flow_options`; ``estimate`` takes the few an estimate needs.
"""

from __future__ import annotations

from typing import Annotated

import typer

from sluice.cli.common import fail_on_input_errors
from sluice.cli.flow_options import FlowArguments, flow_command

FLOW = ("sluice.flows.karabo", "karabo_simulation")
# The repeated options keep the singular spelling they had (--product dirty --product ...).
SINGULAR = {"products": ["--product"], "tolerations": ["--toleration"]}
ESTIMATED = (
    "start_freq_hz",
    "end_freq_hz",
    "freq_inc_hz",
    "num_time_stamps",
    "imaging_npixel",
    "products",
    "scratch_volume",
    "min_memory",
)


@flow_command(*FLOW, only=ESTIMATED, aliases=SINGULAR)
def estimate(
    arguments: FlowArguments,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print JSON (keys in docs/cli.md).")
    ] = False,
) -> None:
    """Print the minimum product sizes, temporary volume and memory of a simulation."""
    from sluice.karabo.estimate import estimate as compute
    from sluice.karabo.estimate import refuse_if_too_big
    from sluice.karabo.settings import KaraboSettings
    from sluice.quantity import parse_memory

    given = dict(arguments.values)
    products = tuple(given.pop("products"))
    scratch_volume, min_memory = given.pop("scratch_volume"), given.pop("min_memory")
    settings = KaraboSettings.parse(**given, products=products, obs_id="estimate")
    found = compute(settings, min_memory_bytes=parse_memory(min_memory, what="min_memory"))
    if json_output:
        typer.echo(found.model_dump_json(indent=2))
    else:
        for row in found.rows():
            typer.echo(f"{row['quantity']:<26} {row['value']}")
    if scratch_volume:
        refuse_if_too_big(found, parse_memory(scratch_volume, what="scratch_volume"))


@flow_command(*FLOW, aliases=SINGULAR)
def run(arguments: FlowArguments) -> None:
    """Simulate, stage the products with their .meta, and verify the ingestor handled them."""
    from sluice.flows.karabo import check_parameters, karabo_simulation, run_name
    from sluice.ledger import refuse_if_running

    settings = check_parameters(arguments.values).settings  # bad input: before a server or job
    if not arguments.values.get("ledger_block"):  # a block is read from the server, in the flow
        refuse_if_running(run_name(settings.obs_id), arguments.values.get("ledger_url"))
    # the observation this command checked, even if the hour turns before the flow starts
    result = karabo_simulation(**{**arguments.for_the_flow(), "obs_id": settings.obs_id})
    for rel, fate in result.items():
        typer.echo(f"{fate:<10} {rel}")


def register(app: typer.Typer) -> None:
    """Add this flow's commands to the `sluice` app."""
    group = typer.Typer(no_args_is_help=True, help=__doc__.splitlines()[0])
    group.command("estimate")(fail_on_input_errors(estimate))
    group.command("run")(fail_on_input_errors(run))
    app.add_typer(group, name="karabo")
