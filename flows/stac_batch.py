"""A batch of autoeval pipelines over STAC items, metered by stop/resume admission.

Replaces autoeval-coordinator's ``submit_stac_batch.py`` (and, through
``sluice stac-report`` / ``stac-purge``, ``local_reports.py`` and
``purge_dispatch_jobs.py``). Read top to bottom: validate every input, find the
items, write their AOIs, then run chunks of items (pipeline mode: one
``pipeline`` dispatch per item; stage mode: inundate / mosaic / agreement per
chunk) through the admission gate, and report.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner
from prefect_aws import AwsCredentials
from sluice.blocks.ledger import LedgerSettings, open_flow_ledger
from sluice.blocks.nomad import NomadCluster
from sluice.blocks.storage import s3_settings
from sluice.tasks.admission import ensure_rate_limit, pacer
from sluice.tasks.reports import (
    ProgressReporter,
    Terminal,
    artifact_key,
    publish_markdown,
    publish_table,
)
from sluice.tasks.stac import finish, pipelines, plan, stage, write_aoi_files

from sluice.errors import WorkIncomplete
from sluice.jobs import nothing_to_submit
from sluice.ledger import hold_run
from sluice.names import BatchName, Directory
from sluice.resources import shipped
from sluice.stac.admission import AdmissionGate, GatedBackend, Pacer, active_counter
from sluice.stac.batch import (
    BenchmarkSources,
    Mode,
    OnMissing,
    StacBackend,
    home_dir,
    job_kinds,
    job_memory,
    log_tree,
    make_backend,
    run_name,
)
from sluice.stac.execution import STAGES, BatchContext, MemoryTiers
from sluice.stac.outputs import job_credentials, secret_values
from sluice.stac.pictures import write_stac_page
from sluice.stac.prepare import PreparedBatch, prepare_batch
from sluice.stac.reports import build_report, remember_items, report_markdown, write_report

CHUNKS_IN_FLIGHT = 4
STANDINS = shipped("sluice.examples", "stac", "standins.py")


class StacBatchIncomplete(WorkIncomplete):
    """Some items did not succeed; the report lists them."""


# A TaskRunner of any future type but PrefectFuture[Any] is refused by flow()'s
# annotation (TaskRunner is invariant): prefect's typing, not this code.
def prepare(parameters: Mapping[str, Any]) -> PreparedBatch:
    """The batch's inputs checked and its items looked up, from the flow's parameters. The
    CLI calls this before a server starts and hands the result to the flow's own call
    (``hand_to_flow``): the catalog is opened and the items looked up once."""
    aws = parameters["aws_credentials_block"]
    return prepare_batch(
        output_root=parameters["output_root"],
        hand_index_path=parameters["hand_index_path"],
        stac_api_url=parameters["stac_api_url"],
        sources=list(parameters["benchmark_sources"] or []),
        collection=parameters["collection"],
        item_list=parameters["item_list"],
        resubmit_failed=parameters["resubmit_failed"],
        search_bbox=parameters["search_bbox"],
        search_datetime=parameters["search_datetime"],
        stop_threshold=parameters["stop_threshold"],
        resume_threshold=parameters["resume_threshold"],
        wait_seconds=parameters["wait_seconds"],
        chunk_size=parameters["chunk_size"],
        use_local_creds=parameters["use_local_creds"],
        aws_credentials=s3_settings(aws) if aws else None,
        stage_mode=parameters["mode"] is Mode.STAGE,
        stop_on_missing=parameters["on_missing"] is OnMissing.STOP,
        max_tier=parameters["max_tier"],
        temp_dir=parameters["temp_dir"],
        use_local_output=parameters["use_local_output"],
    )


@flow(name="stac-batch", task_runner=ThreadPoolTaskRunner(max_workers=CHUNKS_IN_FLIGHT))  # type: ignore[arg-type]
def stac_batch(
    batch_name: BatchName,
    output_root: str,
    hand_index_path: str,
    stac_api_url: str,
    benchmark_sources: BenchmarkSources | None = None,
    collection: str | None = None,
    item_list: str | None = None,
    resubmit_failed: str | None = None,
    search_bbox: list[float] | None = None,
    search_datetime: str | None = None,
    wait_seconds: float = 10.0,
    stop_threshold: int = 30,
    resume_threshold: int = 15,
    use_local_creds: bool = False,
    use_local_output: bool = False,
    temp_dir: str = "/tmp/stac_batch",
    aws_credentials_block: AwsCredentials | None = None,
    backend: StacBackend = StacBackend.LOCAL,
    mode: Mode = Mode.PIPELINE,
    on_missing: OnMissing = OnMissing.FAIL,
    chunk_size: int = 50,
    catchments_per_job: int = 500,
    entries_per_job: int = 20,
    stage_retries: int = 2,
    hand_overlap_percent: float = 40.0,
    max_tier: int = 1,
    pipeline_command: list[str] | None = None,
    stage_command: list[str] | None = None,
    rate_limit_name: str | None = None,
    admission_poll_seconds: float = 10.0,
    parallelism: int | None = None,
    report_dir: Directory | None = None,
    ledger_url: str | None = None,
    ledger_block: LedgerSettings | None = None,
    nomad_block: NomadCluster | None = None,
    nomad_spec_dir: str | None = None,
) -> dict[str, float]:
    """Run the autoeval pipeline over STAC items with stop/resume admission.

    Args:
        batch_name: The batch (tags every job; the ledger run is ``stac/<batch_name>``).
        output_root: ``s3://bucket/prefix`` or a local directory for every output.
        hand_index_path: The HAND index (``catchments.geojson`` at its root in stage mode).
        stac_api_url: The STAC API holding the items and benchmarks.
        benchmark_sources: Benchmark STAC collections the pipeline evaluates (passed on in
            its meta; items are not looked up there).
        collection: Look item ids up in this collection only (default: every collection).
        item_list: File of STAC item ids, one per line (the seed's ``--item_list``).
        resubmit_failed: A report directory: rerun its ``unique_fail_aoi_names.txt`` (and
            silent failures) instead of an item list.
        search_bbox: Instead of an item list, search ``benchmark_sources`` in this bbox.
        search_datetime: Datetime (interval) filter of that search.
        wait_seconds: Pacing: at least this many seconds between two submissions of this
            batch (0 = none); with ``rate_limit_name``, shared by every flow using it.
        stop_threshold: Pause submitting when this many jobs are active.
        resume_threshold: Resume when at most this many are active (must be below stop).
        use_local_creds: Take AWS credentials from this process's environment. They reach
            jobs through the backend's secret channel, never through job meta.
        use_local_output: ``--output_root`` is a local directory (the seed's flag); an AOI
            path under ``local-batches/`` is given to jobs as ``/local-batches/...``.
        temp_dir: Where AOI GeoPackages are written before they are copied to
            ``<output_root>/AOIs/``.
        aws_credentials_block: A prefect-aws ``AwsCredentials`` block to use instead.
        backend: ``local`` processes or ``nomad``.
        mode: ``pipeline`` (one pipeline job per item) or ``stage`` (stages from Prefect).
        on_missing: Ids the STAC API does not hold: ``fail`` (run the rest, exit non-zero),
            ``continue`` (run the rest) or ``stop`` (run nothing).
        chunk_size: Items per Prefect task run.
        catchments_per_job: Stage mode: inundate entries (scenario x catchment) per job.
        entries_per_job: Stage mode: mosaic/agreement entries per job.
        stage_retries: Stage mode: re-runs of a failed stage job (one entry per job).
        hand_overlap_percent: Keep a catchment with at least this % of its area in the AOI.
        max_tier: A job killed for memory runs again with twice the memory, up to this many
            times (0: an OOM is final). Jobs first run with the memory their job definition
            gives (Nomad: the registered job's, dispatched as it is); only a retry registers
            a sized variant (``pipeline-<MiB>mib``). Local jobs have no limit to raise.
        pipeline_command: Pipeline mode command on non-Nomad backends (default: stand-in).
        stage_command: Stage mode command prefix (default: the stand-in stage jobs).
        rate_limit_name: Pace through this Prefect global concurrency limit, shared with
            every flow using the same name (one API call per submission), instead of
            pacing this batch alone.
        admission_poll_seconds: While paused, re-count at least this often.
        parallelism: Local backend: processes at once (default: CPU count).
        report_dir: Report files (default ``$SLUICE_HOME/stac/<batch>/report``).
        ledger_url: Ledger store (default: SQLite under SLUICE_HOME).
        ledger_block: A LedgerSettings block (PostgreSQL with a secret password) instead.
        nomad_block: A ``NomadCluster`` block (default: NOMAD_ADDR / NOMAD_TOKEN ...).
        nomad_spec_dir: Where parameterized job specs missing from Nomad are registered
            from (default ``infra/nomad``).
    """
    prepared = prepare(dict(locals()))  # exactly the parameters declared above
    logger = get_run_logger()
    sources = list(benchmark_sources or [])
    items, missing, credentials = prepared.items, prepared.missing, prepared.credentials
    if missing:
        logger.warning(prepared.missing_message(collection))

    nomad = nomad_block.settings() if nomad_block else None
    runner = make_backend(backend, batch_name, parallelism, nomad, nomad_spec_dir)
    ledger = open_flow_ledger(ledger_url, ledger_block)
    run = run_name(batch_name)
    with contextlib.closing(runner), hold_run(ledger, run):  # closed however the batch ends
        runner.preflight(job_kinds(mode))  # reachable, credentials accepted, kinds of job known
        if rate_limit_name:
            pace = pacer(ensure_rate_limit(rate_limit_name, wait_seconds))
        else:
            pace = Pacer(wait_seconds) if wait_seconds else None

        latest = ledger.latest(run)
        todo = [i for i in items if not (i.id in latest and latest[i.id].outcome == "succeeded")]
        if todo:
            logger.info(
                "%d items: %d to run, %d already succeeded, %d missing",
                len(items) + len(missing),
                len(todo),
                len(items) - len(todo),
                len(missing),
            )
        else:
            logger.info(nothing_to_submit(len(items), len(items) + len(missing), "items"))
        if secrets := job_credentials(credentials):  # the backend's secret channel, never meta
            runner.put_secrets(secrets)
        prefixes = ["pipeline"] if mode is Mode.PIPELINE else list(STAGES)
        count = [active_counter(runner, p) for p in prefixes]
        gate = AdmissionGate(
            lambda: sum(c() for c in count),
            stop=stop_threshold,
            resume=resume_threshold,
            poll_seconds=admission_poll_seconds,
            pace=pace,
        )
        progress = ProgressReporter(
            len(todo), f"{run}: items finished", terminal=Terminal(logger.info)
        )
        ctx = BatchContext(
            batch=batch_name,
            backend=GatedBackend(runner, gate),
            ledger=ledger,
            outputs=prepared.outputs,
            aois={},
            hand_index_path=hand_index_path,
            benchmark_sources=sources,
            pipeline_command=pipeline_command or [sys.executable, str(STANDINS), "pipeline"],
            stage_command=stage_command or [sys.executable, str(STANDINS)],
            job_env={
                "STAC_API_URL": stac_api_url,
                "HAND_INDEX_OVERLAP_THRESHOLD_PERCENT": str(hand_overlap_percent),
            },
            logs=log_tree(batch_name),
            collections={i.id: i.collection_id or "" for i in todo},
            secrets=secret_values(credentials),
            overlap_percent=hand_overlap_percent,
            catchments_per_job=catchments_per_job,
            entries_per_job=entries_per_job,
            stage_retries=stage_retries,
            tiers=MemoryTiers(job_memory(runner, job_kinds(mode)[0]), max_tier),
            on_item=lambda item, result: progress.advance(outcome=result.outcome.value),
        )
        ctx.supersede({i.id for i in todo})
        ctx.aois = write_aoi_files(ctx, batch_name, todo, Path(temp_dir), use_local_output)
        chunks = {
            f"chunk-{n:04d}": todo[s : s + chunk_size]
            for n, s in enumerate(range(0, len(todo), chunk_size))
        }
        if mode is Mode.PIPELINE:
            futures = [pipelines.submit(ctx, name, part) for name, part in chunks.items()]
        else:
            futures = [run_stages(ctx, name, part, prepared.index) for name, part in chunks.items()]
        for future in futures:
            future.wait()
            if future.state.is_failed():  # its items stay unfinished: silent failures
                logger.error("%s failed: %s", future.task_run_id, future.state.message)
        progress.finish()

    # the report covers every item the batch was ever asked for, each by its newest attempt
    run_list, not_found = remember_items(
        home_dir(batch_name),
        [*(i.id for i in items), *missing],
        missing,
        (stop_threshold, resume_threshold),
    )
    final = ledger.latest(run)
    report = build_report(run_list, log_tree(batch_name).messages(), not_found, final)
    directory = Path(report_dir) if report_dir else home_dir(batch_name) / "report"
    write_report(report, directory)
    page = write_stac_page(
        directory, batch_name, report, ledger.attempts(run), (stop_threshold, resume_threshold)
    )
    stats = gate.stats
    summary = {
        **report.summary(),
        "admitted": stats.admitted,
        "pauses": stats.pauses,
        "max_active": stats.max_active,
        "counts": stats.counts,
        "paused_seconds": round(stats.paused_seconds, 3),
        "gate_overhead_ms_per_item": 1000 * stats.overhead_seconds / max(stats.admitted, 1),
        "pacing_ms_per_item": 1000 * stats.pacing_seconds / max(stats.admitted, 1),
    }
    publish_markdown(
        artifact_key("stac", batch_name),
        report_markdown(batch_name, report) + f"\n\nPictures: `{page}`",
        f"STAC batch {batch_name}",
    )
    publish_table(
        artifact_key("stac", batch_name, "items"),
        [{"item": i, "outcome": outcome_of(final, i, not_found)} for i in report.run_list],
        f"STAC batch {batch_name}: item outcomes",
    )
    ledger.close()
    logger.info(
        "report in %s: %d items, %d succeeded, %d failed (%d silent, %d not found); "
        "admitted %d, %d pauses, max %d active, pacing %.1f ms per item",
        directory,
        summary["items"],
        summary["success"],
        summary["failed"],
        summary["silent_failures"],
        summary["not_found"],
        summary["admitted"],
        summary["pauses"],
        summary["max_active"],
        summary["pacing_ms_per_item"],
    )
    absent = set(not_found)
    failed, silent = report.failed - absent, report.silent - absent
    if failed or (absent and on_missing is not OnMissing.CONTINUE):
        raise StacBatchIncomplete(
            f"{len(failed)} failed ({len(silent)} silent), {len(absent)} item id(s) not found; "
            f"rerun with --resubmit-failed {directory}"
        )
    return summary


def run_stages(ctx: BatchContext, chunk: str, items: list, index: list):
    """Stage mode for one chunk: plan, inundate, mosaic, agreement, finish (task runs)."""
    planned = plan.submit(ctx, chunk, items, index)
    # Prefect resolves a future passed as an argument; submit's typed overload does not say so.
    inundated = stage.submit(ctx, "inundate", chunk, planned)  # type: ignore[call-overload]
    mosaicked = stage.submit(ctx, "mosaic", chunk, planned, wait_for=[inundated])  # type: ignore[call-overload]
    agreed = stage.submit(ctx, "agreement", chunk, planned, wait_for=[mosaicked])  # type: ignore[call-overload]
    return finish.submit(ctx, chunk, planned, [inundated, mosaicked, agreed])  # type: ignore[call-overload]


def outcome_of(latest: dict, item: str, missing: list[str]) -> str:
    if item in missing:
        return "missing"
    attempt = latest.get(item)
    return "not run" if attempt is None else str(attempt.outcome or "running")
