"""`sluice stac-batch`, `stac-report`, `stac-purge`: thin fronts over the STAC batch flow.

The seed's flags keep their underscore spelling (``--batch_name``), and
``--use-local-creds`` keeps its dash, so existing command lines work unchanged.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from sluice.cli.common import fail_on_input_errors
from sluice.cli.flow_options import FlowArguments, flow_command
from sluice.cli.runs import LedgerUrl
from sluice.errors import SluiceInputError

Opt = typer.Option


FLOW = ("sluice.flows.stac_batch", "stac_batch")
# The seed's spellings (--batch_name); its dashed flags (--resubmit-failed) are the flow's own.
SEED_SPELLINGS = {
    name: [f"--{name}"]
    for name in (
        "batch_name",
        "output_root",
        "hand_index_path",
        "stac_api_url",
        "benchmark_sources",
        "item_list",
        "wait_seconds",
        "stop_threshold",
        "resume_threshold",
        "temp_dir",
        "aws_credentials_block",
        "on_missing",
        "chunk_size",
        "catchments_per_job",
        "stage_retries",
        "max_tier",
        "report_dir",
        "nomad_block",
        "nomad_spec_dir",
    )
}


@flow_command(*FLOW, aliases=SEED_SPELLINGS, aliases_first=True)
def stac_batch(
    arguments: FlowArguments,
    nomad_addr: Annotated[
        str | None,
        Opt("--nomad_addr", "--nomad-addr", help="Nomad address (default: $NOMAD_ADDR)."),
    ] = None,
    nomad_namespace: Annotated[
        str | None,
        Opt("--nomad_namespace", "--nomad-namespace", help="Nomad namespace ($NOMAD_NAMESPACE)."),
    ] = None,
    nomad_token: Annotated[
        str | None,
        Opt(
            "--nomad_token",
            "--nomad-token",
            help="Nomad ACL token (default: $NOMAD_TOKEN; a saved --nomad-block keeps it "
            "off the command line).",
        ),
    ] = None,
    nomad_token_in_meta: Annotated[
        bool,
        Opt("--nomad_token_in_meta", help="Refused: Sluice never puts a credential in meta."),
    ] = False,
) -> None:
    """Run a batch of autoeval pipelines over STAC items (submit_stac_batch.py)."""
    from sluice.flows.stac_batch import prepare
    from sluice.flows.stac_batch import stac_batch as flow
    from sluice.ledger import refuse_if_running
    from sluice.stac.batch import check_backend, run_name
    from sluice.stac.prepare import hand_to_flow

    values = arguments.values
    if nomad_token_in_meta:
        raise SluiceInputError(
            "--nomad_token_in_meta: a token in job meta is readable by anyone who can read the "
            "job, so Sluice never sends one; give the task its token from a Nomad Variable or "
            "its workload identity (docs/nomad.md)"
        )
    given = {"address": nomad_addr, "namespace": nomad_namespace, "token": nomad_token}
    if any(given.values()):
        values = {**values, "nomad_block": _nomad_cluster(values["nomad_block"], given)}
        arguments = replace(arguments, values=values)
    blocked = values["aws_credentials_block"] or values["nomad_block"]
    parameters = arguments.for_the_flow() if blocked else dict(values)  # from the API
    prepared = prepare(parameters)
    if prepared.missing:
        print(f"warning: {prepared.missing_message(values['collection'])}")
    nomad = parameters["nomad_block"].settings() if values["nomad_block"] else None
    check_backend(parameters["backend"], parameters["mode"], nomad, values["nomad_spec_dir"])
    hand_to_flow(prepared)
    if not values["ledger_block"]:  # a block's ledger is read from the server, in the flow
        refuse_if_running(run_name(values["batch_name"]), values["ledger_url"])
    flow(**(parameters if blocked else arguments.for_the_flow()))


def _nomad_cluster(block_name: str | None, given: dict[str, str | None]):
    """The seed's --nomad_addr/--nomad_namespace/--nomad_token as an unsaved NomadCluster
    (the token a SecretStr from here on), each unset one from the nomad CLI's environment."""
    if block_name:
        raise SluiceInputError(
            "--nomad-block: give a block or --nomad_addr/--nomad_token, not both"
        )
    from pydantic import SecretStr

    from sluice.backends.nomad.client import NomadSettings
    from sluice.blocks.nomad import NomadCluster

    environment = NomadSettings.from_environment()
    token = given["token"] or environment.token
    return NomadCluster(
        address=given["address"] or environment.address,
        region=environment.region,
        namespace=given["namespace"] or environment.namespace,
        token=SecretStr(token) if token else None,
    )


def stac_report(
    report_dir: Annotated[str, Opt("--report_dir", help="Where report files go.")],
    batch_name: Annotated[
        str | None, Opt("--batch_name", help="A Sluice batch (its ledger, logs and items).")
    ] = None,
    run_list: Annotated[
        str | None,
        Opt("--run_list", help="Item ids to report on (default: every id of the batch)."),
    ] = None,
    log_dir: Annotated[
        str | None,
        Opt("--log_dir", help="A log tree in the seed's layout (default: the batch's own)."),
    ] = None,
    json_output: Annotated[bool, Opt("--json", help="Print JSON (keys in docs/cli.md).")] = False,
    ledger_url: LedgerUrl = None,
) -> None:
    """Write a batch's report with local_reports.py's rules and files (same flags)."""
    from sluice.errors import SluiceInputError
    from sluice.names import BATCH_NAME, DIRECTORY
    from sluice.stac.batch import home_dir, log_tree, run_name

    if batch_name is not None:
        BATCH_NAME.check(batch_name, "--batch_name")
    DIRECTORY.check(report_dir, "--report_dir")
    from sluice.ledger import check_ledger_url

    url = check_ledger_url(ledger_url, name="--ledger-url")
    from sluice.stac.inputs import read_item_list
    from sluice.stac.logs import LogTree
    from sluice.stac.pictures import write_stac_page
    from sluice.stac.reports import build_report, read_batch_record, write_report

    if batch_name is None and (log_dir is None or run_list is None):
        raise SluiceInputError("--batch_name: required unless --log_dir and --run_list are given")
    if log_dir is not None and not Path(log_dir).is_dir():
        raise SluiceInputError(f"--log_dir {log_dir}: not a directory")
    ids: list[str] = []
    not_found: list[str] = []
    latest: dict = {}
    thresholds: tuple[int, int] | None = None
    attempts: list = []
    if batch_name is not None:
        from sluice.ledger import open_ledger

        if not home_dir(batch_name).is_dir():
            raise SluiceInputError(
                f"--batch_name {batch_name!r}: no such batch in {home_dir(batch_name).parent}"
            )
        ids, not_found, thresholds = read_batch_record(home_dir(batch_name))
        ledger = open_ledger(url)
        try:
            latest = ledger.latest(run_name(batch_name))
            attempts = ledger.attempts(run_name(batch_name))
        finally:
            ledger.close()
    if run_list is not None:
        ids = read_item_list(run_list)
    if log_dir:
        tree = LogTree(Path(log_dir), "")
    else:
        assert batch_name is not None  # refused above when neither is given
        tree = log_tree(batch_name)
    report = build_report(ids, tree.messages(), not_found, latest)
    written = write_report(report, Path(report_dir))
    if batch_name is not None:
        write_stac_page(written, batch_name, report, attempts, thresholds)
    if json_output:
        print(json.dumps({"report_dir": str(written.resolve()), "summary": report.summary()}))
        return
    for key, value in report.summary().items():
        print(f"{key}: {value}")


def stac_purge(
    job_name: Annotated[
        str | None,
        Opt("--job-name", help="Purge only this parent job's dispatches (default: all four)."),
    ] = None,
    nomad_addr: Annotated[
        str, Opt("--nomad-addr", envvar="NOMAD_ADDR", help="Nomad server address.")
    ] = "http://127.0.0.1:4646",
    nomad_token: Annotated[
        str | None,
        Opt(
            "--nomad-token",
            envvar="NOMAD_TOKEN",
            show_envvar=True,
            help="ACL token. On the command line it is visible to other local users in the "
            "process list: prefer NOMAD_TOKEN or --nomad_block.",
        ),
    ] = None,
    namespace: Annotated[
        str, Opt("--namespace", envvar="NOMAD_NAMESPACE", help="Nomad namespace.")
    ] = "default",
    dry_run: Annotated[
        bool, Opt("--dry-run", help="Show what would be purged without doing it.")
    ] = False,
    batch_size: Annotated[
        int, Opt("--batch-size", help="Jobs purged per batch (10 at a time, as the seed).")
    ] = 500,
    batch_delay: Annotated[float, Opt("--batch-delay", help="Seconds between batches.")] = 0.05,
    verbose: Annotated[bool, Opt("--verbose", "-v", help="A line per job.")] = False,
    nomad_block: Annotated[
        str | None, Opt("--nomad_block", help="NomadCluster block (wins over the flags above).")
    ] = None,
) -> None:
    """Purge dispatched pipeline and stage jobs from Nomad (purge_dispatch_jobs.py)."""
    from sluice.backends.nomad import NomadApi, NomadSettings, purge_dispatched
    from sluice.backends.nomad.purge import SEED_PREFIXES

    if not 1 <= batch_size <= 10_000:
        raise SluiceInputError(f"--batch-size {batch_size}: expected 1 to 10000")
    if not 0 <= batch_delay <= 3600:
        raise SluiceInputError(f"--batch-delay {batch_delay}: expected 0 to 3600 seconds")
    if nomad_block:
        from sluice.blocks.nomad import NomadCluster
        from sluice.server import load_block

        settings = load_block(NomadCluster, nomad_block, "--nomad_block").settings()
    else:
        settings = NomadSettings(address=nomad_addr, token=nomad_token, namespace=namespace)
    prefixes = [job_name] if job_name else list(SEED_PREFIXES)
    api = NomadApi(settings)
    try:
        report = purge_dispatched(
            api,
            prefixes,
            dry_run=dry_run,
            batch_size=batch_size,
            batch_delay=batch_delay,
            on_job=(lambda job_id, what: print(f"{what} {job_id}")) if verbose or dry_run else None,
        )
    finally:
        api.close()
    verb = "would purge" if dry_run else "purged"
    print(f"{verb} {len(report.purged)}, already gone {len(report.already_gone)}")
    for job_id, error in report.failed.items():
        print(f"failed {job_id}: {error}")
    if not report.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `sluice stac-batch`, `stac-report` and `stac-purge` to the app."""
    app.command("stac-batch")(fail_on_input_errors(stac_batch))
    app.command("stac-report")(fail_on_input_errors(stac_report))
    app.command("stac-purge")(fail_on_input_errors(stac_purge))
