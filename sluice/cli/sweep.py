"""`sluice sweep`: the tiered index sweep with the seed's flags (a thin front over the flow).

Its options are the flow's parameters (``flows/sweep.py``), derived by
:mod:`sluice.cli.flow_options`; nothing here restates a name, a default or a check.
"""

from __future__ import annotations

import sys

import typer

from sluice.backends.factory import BackendKind
from sluice.cli.common import fail_on_input_errors, preflight
from sluice.cli.flow_options import FlowArguments, flow_command
from sluice.sweep.config import DryRun


@flow_command("sluice.flows.sweep", "tiered_index_sweep", trailing="indexes")
def sweep(arguments: FlowArguments) -> None:
    """Run every selected index as its own job, climbing RAM tiers on OOM.

    Escalation needs --tier (a number or auto): without it every job keeps the
    template's memory (or --memory) and an OOM is final; a line at start says so.
    """
    parameters = arguments.values
    if parameters["source_job"]:
        parameters["template_path"] = None
    from sluice.sweep.config import NOTHING_TO_DO, check_dry_run, escalation_note, resolve_config

    check_dry_run(parameters["dry_run"], parameters["backend"])
    config, start_tier, _ = resolve_config(parameters)  # the flow's own checks, before a server
    if not config.indexes:
        print(NOTHING_TO_DO)
        return
    if parameters["dry_run"] is DryRun.PRINT:
        from sluice.sweep.dry_run import print_manifests

        if note := escalation_note(config, start_tier):
            print(note, file=sys.stderr)
        print_manifests(config, start_tier, parameters["mode"])
        return
    backend, credentials = parameters["backend"], parameters["kubernetes_credentials"]
    if backend is not BackendKind.LOCAL and not credentials:  # unreachable: nothing started
        preflight(backend, namespace=parameters["namespace"])
    from sluice.ledger import refuse_if_running

    if not parameters["ledger_block"]:  # a block's ledger is read from the server, in the flow
        refuse_if_running(config.run, parameters["ledger_url"])  # a second run: one line
    parameters = arguments.for_the_flow()  # the API known, blocks loaded
    if backend is not BackendKind.LOCAL and credentials:  # a block is read from the API first
        preflight(
            backend,
            namespace=parameters["namespace"],
            kubernetes_credentials=parameters["kubernetes_credentials"],
        )
    from sluice.flows.sweep import tiered_index_sweep

    tiered_index_sweep(**parameters)


def register(app: typer.Typer) -> None:
    """Add `sluice sweep` to the app."""
    app.command(
        "sweep",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": False},
    )(fail_on_input_errors(sweep))
