"""Watershed batches: create, validate, run. Replaces the WEPPcloud batch runner.

The seed's web pages become these flows' forms: ``create-watershed-batch`` is
"Create Batch Runs", ``validate-watershed-batch`` the Validate button and
``run-watershed-batch`` the task checkboxes, Force Rebuild and Run Batch.
"""

from __future__ import annotations

import shutil
from contextlib import closing
from functools import partial
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner
from prefect_aws import AwsCredentials
from sluice.blocks.ledger import LedgerSettings, open_flow_ledger
from sluice.blocks.storage import storage_for
from sluice.tasks.reports import ProgressReporter, Terminal, artifact_key, publish_table
from sluice.tasks.watersheds import (
    ensure_worker_pool,
    pool_limit,
    publish_batch_summary,
    run_chunk,
)

from sluice.backends.factory import BackendKind, create_backend
from sluice.errors import SluiceInputError, WorkIncomplete
from sluice.inflight import bounded_futures
from sluice.jobs import nothing_to_submit
from sluice.ledger import hold_run
from sluice.locations import case_insensitive
from sluice.watersheds.base_source import fetch_base
from sluice.watersheds.batch import (
    BatchLayout,
    BatchState,
    LastRun,
    Summary,
    utcnow,
)
from sluice.watersheds.execution import BatchExecution, RunPlan, chunked, plan_runs
from sluice.watersheds.features import checksum, largest_first, load_features, validate
from sluice.watersheds.inputs import MAX_LANES, check_create, check_run, layout_of
from sluice.watersheds.pool import WorkerPool
from sluice.watersheds.stages import Tasks, WatershedTask

ALL_TASKS = list(WatershedTask)


class BatchIncomplete(WorkIncomplete):
    """Some watersheds failed; the batch summary names them."""


@flow(name="create-watershed-batch")
def create_watershed_batch(
    batch: str,
    base: str,
    stage_config: str,
    geojson: str | None = None,
    template: str | None = None,
    root: str | None = None,
    aws_credentials_block: AwsCredentials | None = None,
) -> BatchState:
    """Create a batch: its directory, the base project in `_base`, resources, runs, state.

    Args:
        batch: Batch name: 3-29 lowercase letters, digits, '-' or '_'.
        base: The base project: a directory, or a prefix `s3://bucket/prefix` (`gs://` with
            Google's default credentials).
        stage_config: YAML of each stage's command (the batch's configuration).
        geojson: Watershed FeatureCollection, copied into `resources/` (or set it when validating).
        template: Runid template, e.g. `{slug(properties['HucName'])}-{zfill(one_based_index, 3)}`.
        root: Directory that holds batches (default `$SLUICE_HOME/watersheds`).
        aws_credentials_block: A prefect-aws AwsCredentials block for an S3 base.
    """
    checked = check_create(batch, base, stage_config, geojson, template, root)
    layout, validation = checked.layout, checked.validation
    storage = storage_for(aws_credentials_block)

    layout.dir.mkdir(parents=True)
    try:
        fetch_base(base, layout.base, storage=storage)
        for directory in (layout.resources, layout.runs):
            directory.mkdir()
        state = BatchState(
            name=batch, created_at=utcnow(), base_source=base, stages=checked.catalogue
        )
        if geojson:
            _store_geojson(layout, state, Path(geojson))
        if validation:
            state.template = template
            state.validated_runids = len(validation.watersheds)
            state.template_status, state.template_summary = "valid", validation.summary()
        layout.save(state)
    except BaseException:
        shutil.rmtree(layout.dir, ignore_errors=True)
        raise
    get_run_logger().info("batch %s created at %s", batch, layout.dir)
    return state


def _store_geojson(layout: BatchLayout, state: BatchState, source: Path) -> None:
    target = layout.resources / source.name
    if source.resolve() != target.resolve():
        shutil.copyfile(source, target)
    state.geojson = str(target.relative_to(layout.dir))
    state.geojson_sha256 = checksum(target)


@flow(name="validate-watershed-batch")
def validate_watershed_batch(
    batch: str,
    template: str | None = None,
    geojson: str | None = None,
    root: str | None = None,
) -> dict[str, Any]:
    """The Validate button: every feature's runid and wepppy's summary, stored with the batch.

    An invalid template is stored with status `invalid` (as wepppy stores it) and the run
    still completes; `run-watershed-batch` refuses the batch until a valid one is stored.

    Args:
        batch: Batch name.
        template: Runid template (default: the batch's current one).
        geojson: A new watershed FeatureCollection to copy into `resources/` (default: current).
        root: Directory that holds batches (default `$SLUICE_HOME/watersheds`).
    """
    layout = layout_of(batch, root)
    state = layout.load()
    source = Path(geojson) if geojson else layout.dir / (state.geojson or "")
    template = template or state.template
    if not geojson and not state.geojson:
        raise SluiceInputError(f"batch {batch!r}: no GeoJSON yet; give one")
    if not template:
        raise SluiceInputError(f"batch {batch!r}: no runid template yet; give one")
    validation = validate(load_features(source), template, fold_case=case_insensitive(layout.runs))
    report: dict[str, Any] = {
        "template": template,
        "status": "valid" if validation.ok else "invalid",
    }
    report |= validation.report()
    if geojson:
        _store_geojson(layout, state, source)
    state.template = template
    state.template_status = report["status"]
    state.template_summary = report["summary"]
    state.validated_runids = len(validation.watersheds) if validation.ok else None
    layout.save(state)
    publish_table(
        artifact_key("watersheds", batch, "runids"),
        [{k: row[k] for k in ("index", "feature_id", "run_id", "error")} for row in report["rows"]],
        f"watershed batch {batch}: runids from {template[:100]!r} ({report['status']})",
    )
    if not validation.ok:
        get_run_logger().warning(
            "runid template %r is invalid: %s", template[:100], report["summary"]
        )
    return report


# A TaskRunner of any future type but PrefectFuture[Any] is refused by flow()'s
# annotation (TaskRunner is invariant): prefect's typing, not this code.
@flow(name="run-watershed-batch", task_runner=ThreadPoolTaskRunner(max_workers=MAX_LANES))  # type: ignore[arg-type]
def run_watershed_batch(
    batch: str,
    tasks: Tasks = ALL_TASKS,
    force_rebuild: bool = False,
    pool_size: int = 3,
    lanes: int | None = None,
    max_chunks: int = 24,
    backend: BackendKind = BackendKind.LOCAL,
    root: str | None = None,
    ledger_url: str | None = None,
    ledger_block: LedgerSettings | None = None,
) -> Summary:
    """Run Batch: every watershed's chain of stages, largest area first, skipping done stages.

    Args:
        batch: Batch name.
        tasks: The seed's checkboxes: watershed (Delineation and Abstraction), landuse, soils,
            climate, wepp, watar, omni (Scenarios). All selected by default.
        force_rebuild: Re-copy `_base` and re-run every selected stage, even those done.
        pool_size: Watershed jobs running at once: the limit of the Prefect global concurrency
            limit `sluice-watersheds-<batch>`; a running chunk holds one slot and runs one job
            at a time (change the limit live with `prefect gcl update`).
        lanes: Chunks in flight (default: pool_size); more than pool_size lets a limit raised
            while the batch runs take effect at the next chunk.
        max_chunks: Watersheds are dealt into at most this many chunks; a chunk is one
            Prefect task run with one nested task run per stage wave.
        backend: Where stage commands run.
        root: Directory that holds batches (default `$SLUICE_HOME/watersheds`).
        ledger_url: Ledger store (default: SQLite under SLUICE_HOME; or postgresql://...).
        ledger_block: A LedgerSettings block (PostgreSQL with a secret password) instead.
    """
    checked = check_run(batch, tasks, root, pool_size, lanes, max_chunks)
    layout, state, stages, validation = (
        checked.layout,
        checked.state,
        checked.stages,
        checked.validation,
    )
    lanes = checked.lanes

    with (
        closing(open_flow_ledger(ledger_url, ledger_block)) as ledger,
        hold_run(ledger, layout.ledger_run),  # one run of a batch at a time
    ):
        pool = WorkerPool(partial(pool_limit, ensure_worker_pool(batch, pool_size)))
        state.last_run = LastRun(
            started_at=utcnow(),
            flow_run_id=flow_run.get_id(),
            tasks=tasks,
            force_rebuild=force_rebuild,
        )
        layout.save(state)
        plans = plan_runs(layout, largest_first(validation.watersheds), stages, force_rebuild)
        if not plans:
            count = len(validation.watersheds)
            get_run_logger().info(nothing_to_submit(count, count, "watersheds"))
        progress = ProgressReporter(
            sum(len(p.todo) for p in plans),
            f"watershed batch {batch}: stages finished",
            terminal=Terminal(get_run_logger().info),
        )
        with (
            closing(create_backend(backend, parallelism=lanes, log_dir=layout.logs)) as runner,
            progress,
        ):
            execution = BatchExecution(
                layout,
                state.stages,
                stages,
                runner,
                ledger,
                job=state.last_run.flow_run_id,
                on_stage_end=lambda runid, stage, result: progress.advance(
                    outcome=result.outcome.value
                ),
            )
            failures = _drive(execution, chunked(plans, max_chunks), pool, lanes)
        get_run_logger().info(
            "worker pool: %d chunks; lanes waited %.1f s in all for slots (longest %.1f s)",
            pool.stats.acquired,
            pool.stats.waited_seconds,
            pool.stats.longest_wait_seconds,
        )
        summary = publish_batch_summary(
            layout, state, [w.runid for w in validation.watersheds], stages, failures
        )
    if failures:
        raise BatchIncomplete(
            f"{len(failures)} of {summary.total} watersheds failed this run; "
            f"see {layout.state_file} and each run's run_metadata.json"
        )
    return summary


def _drive(
    execution: BatchExecution, chunks: list[list[RunPlan]], pool: WorkerPool, lanes: int
) -> dict[str, str]:
    """Run every chunk, ``lanes`` at a time, starting the next as soon as one ends.

    Returns the failures (runid -> reason); a chunk that crashes fails its runs only.
    """
    numbered = iter(enumerate(chunks, 1))
    failures: dict[str, str] = {}

    def start(numbered_chunk: tuple[int, list[RunPlan]]) -> PrefectFuture:
        number, chunk = numbered_chunk
        return run_chunk.submit(execution, chunk, pool, f"chunk {number}/{len(chunks)}")

    for (_, chunk), future in bounded_futures(lambda: next(numbered, None), start, lanes):
        try:
            failures.update(future.result().failed)
        except Exception as exc:  # noqa: BLE001 - a crashed chunk fails its runs, not the batch
            get_run_logger().error("a chunk crashed: %s", exc)
            failures.update({plan.runid: f"chunk crashed: {exc}" for plan in chunk})
    return failures
