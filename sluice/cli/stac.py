"""`sluice stac-batch`, `stac-report`, `stac-purge`: thin fronts over the STAC batch flow.

The seed's flags keep their underscore spelling (``--batch_name``), and
``--use-local-creds`` keeps its dash, so existing command lines work unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sluice.cli.common import fail_on_input_errors, with_blocks
from sluice.cli.runs import LedgerUrl
from sluice.errors import SluiceInputError

if TYPE_CHECKING:
    pass

Opt = typer.Option


def stac_batch(
    batch_name: Annotated[str, Opt("--batch_name", help="Batch name (tags every job).")],
    output_root: Annotated[str, Opt("--output_root", help="s3://bucket/prefix or a path.")],
    hand_index_path: Annotated[str, Opt("--hand_index_path", help="The HAND index.")],
    stac_api_url: Annotated[str, Opt("--stac_api_url", help="The STAC API.")],
    benchmark_sources: Annotated[
        str,
        Opt(
            "--benchmark_sources",
            help="Benchmark collections the pipeline evaluates (passed on, comma or space "
            "separated).",
        ),
    ] = "",
    collection: Annotated[
        str | None,
        Opt("--collection", help="Look item ids up in this collection only (default: all)."),
    ] = None,
    item_list: Annotated[str | None, Opt("--item_list", help="File of STAC item ids.")] = None,
    resubmit_failed: Annotated[
        str | None, Opt("--resubmit-failed", help="Rerun the failed AOIs of a report dir.")
    ] = None,
    wait_seconds: Annotated[float, Opt("--wait_seconds", help="Pacing between submits.")] = 10.0,
    stop_threshold: Annotated[int, Opt("--stop_threshold", help="Pause at this many.")] = 30,
    resume_threshold: Annotated[int, Opt("--resume_threshold", help="Resume at this many.")] = 15,
    use_local_creds: Annotated[
        bool, Opt("--use-local-creds", help="AWS credentials from this environment.")
    ] = False,
    use_local_output: Annotated[
        bool,
        Opt("--use-local-output", help="--output_root is a local directory (AOIs copied there)."),
    ] = False,
    temp_dir: Annotated[
        str, Opt("--temp_dir", help="Directory for the AOI .gpkg files before they are copied.")
    ] = "/tmp/stac_batch",
    aws_credentials_block: Annotated[
        str | None, Opt("--aws_credentials_block", help="An AwsCredentials block instead.")
    ] = None,
    backend: Annotated[str, Opt("--backend", help="local or nomad.")] = "local",
    mode: Annotated[str, Opt("--mode", help="pipeline or stage.")] = "pipeline",
    on_missing: Annotated[
        str,
        Opt(
            "--on_missing",
            help="Ids the STAC API lacks: fail (run the rest, exit 1), continue, or stop.",
        ),
    ] = "fail",
    chunk_size: Annotated[int, Opt("--chunk_size", help="Items per task run.")] = 50,
    catchments_per_job: Annotated[int, Opt("--catchments_per_job")] = 500,
    stage_retries: Annotated[int, Opt("--stage_retries")] = 2,
    parallelism: Annotated[int | None, Opt("--parallelism", help="Local jobs at once.")] = None,
    report_dir: Annotated[str | None, Opt("--report_dir", help="Report files.")] = None,
    nomad_block: Annotated[str | None, Opt("--nomad_block", help="NomadCluster block.")] = None,
    nomad_spec_dir: Annotated[
        str | None, Opt("--nomad_spec_dir", help="Parameterized job specs to register.")
    ] = None,
) -> None:
    """Run a batch of autoeval pipelines over STAC items (submit_stac_batch.py)."""
    from sluice.errors import SluiceInputError
    from sluice.names import BATCH_NAME, DIRECTORY
    from sluice.stac.batch import Mode, OnMissing, StacBackend

    BATCH_NAME.check(batch_name, "--batch_name")
    if report_dir is not None:
        DIRECTORY.check(report_dir, "--report_dir")

    def choice(enum, value: str, flag: str):
        try:
            return enum(value)
        except ValueError:
            allowed = "|".join(e.value for e in enum)
            raise SluiceInputError(f"{flag} {value!r}: expected {allowed}") from None

    parameters = dict(
        batch_name=batch_name,
        output_root=output_root,
        hand_index_path=hand_index_path,
        stac_api_url=stac_api_url,
        benchmark_sources=benchmark_sources.replace(",", " ").split(),
        collection=collection,
        item_list=item_list,
        resubmit_failed=resubmit_failed,
        wait_seconds=wait_seconds,
        stop_threshold=stop_threshold,
        resume_threshold=resume_threshold,
        use_local_creds=use_local_creds,
        use_local_output=use_local_output,
        temp_dir=temp_dir,
        aws_credentials_block=aws_credentials_block,
        backend=choice(StacBackend, backend, "--backend"),
        mode=choice(Mode, mode, "--mode"),
        on_missing=choice(OnMissing, on_missing, "--on_missing"),
        chunk_size=chunk_size,
        catchments_per_job=catchments_per_job,
        stage_retries=stage_retries,
        parallelism=parallelism,
        report_dir=report_dir,
        nomad_block=nomad_block,
        nomad_spec_dir=nomad_spec_dir,
    )
    if aws_credentials_block or nomad_block:  # the flow takes the blocks themselves
        from prefect_aws import AwsCredentials

        from sluice.blocks.nomad import NomadCluster

        parameters = with_blocks(
            parameters,
            aws_credentials_block=(AwsCredentials, "--aws_credentials_block"),
            nomad_block=(NomadCluster, "--nomad_block"),
        )
    from sluice.blocks.storage import s3_settings
    from sluice.stac.batch import check_backend
    from sluice.stac.prepare import hand_to_flow, prepare_batch

    inputs = dict(
        output_root=output_root,
        hand_index_path=hand_index_path,
        stac_api_url=stac_api_url,
        sources=parameters["benchmark_sources"],
        collection=collection,
        item_list=item_list,
        resubmit_failed=resubmit_failed,
        search_bbox=None,
        search_datetime=None,
        stop_threshold=stop_threshold,
        resume_threshold=resume_threshold,
        wait_seconds=wait_seconds,
        chunk_size=chunk_size,
        use_local_creds=use_local_creds,
        aws_credentials=(
            s3_settings(parameters["aws_credentials_block"])
            if parameters["aws_credentials_block"]
            else None
        ),
        stage_mode=parameters["mode"] is Mode.STAGE,
        stop_on_missing=parameters["on_missing"] is OnMissing.STOP,
        memory=None,
        temp_dir=temp_dir,
        use_local_output=use_local_output,
    )
    prepared = prepare_batch(**inputs)
    if prepared.missing:
        print(f"warning: {prepared.missing_message(collection)}")
    nomad = parameters["nomad_block"].settings() if nomad_block else None
    check_backend(parameters["backend"], parameters["mode"], nomad, nomad_spec_dir)
    hand_to_flow(prepared, **inputs)
    from sluice.ledger import refuse_if_running
    from sluice.server import ensure_api

    refuse_if_running(f"stac/{batch_name}")  # a second run of a running batch: one line
    ensure_api()
    from sluice.flows.stac_batch import stac_batch as flow

    flow(**parameters)


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
    from sluice.stac.batch import home_dir, log_tree

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
            latest = ledger.latest(f"stac/{batch_name}")
            attempts = ledger.attempts(f"stac/{batch_name}")
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
