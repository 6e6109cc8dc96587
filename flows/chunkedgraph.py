"""ChunkedGraph ingest: every layer-2 chunk, and each parent as soon as its children are done.

Replaces PyChunkedGraph's RQ + Redis orchestration (``ingest graph``, the ``t*``
tracker queues, ``ingest status``, ``rqx requeue``, ``flush_redis``). The tracker is
this flow function itself: one thread that submits batches (whole sub-trees, or one
upper parent) to Prefect's task runner and absorbs their records as each batch ends,
so deciding "all children done -> dispatch the parent" never races. State is one
bitset per layer under ``$SLUICE_HOME/chunkedgraph/<table>/`` (see
``sluice.chunkedgraph.tracker``); a killed run resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import time

from prefect import flow, get_run_logger
from prefect.futures import PrefectFuture
from prefect_aws import AwsCredentials
from prefect_gcp import GcpCredentials
from sluice.blocks.storage import storage_for
from sluice.tasks.chunkedgraph import batch_runner, publish_report, run_chunk_batch
from sluice.tasks.reports import ProgressReporter, Terminal

from sluice.backends.factory import create_backend
from sluice.chunkedgraph.batch import Batch, settled_outcome
from sluice.chunkedgraph.config import load_grid, with_ingest_flags
from sluice.chunkedgraph.history import History
from sluice.chunkedgraph.inputs import (
    DEFAULT_PARALLELISM,
    BatchSize,
    Parallelism,
    Processes,
    Window,
    Workers,
    check_ingest,
)
from sluice.chunkedgraph.mirror import StateMirror
from sluice.chunkedgraph.pool import JobPool
from sluice.chunkedgraph.runners import local_processes
from sluice.chunkedgraph.schedule import DEFAULT_BATCH_SIZE, Scheduler, record_outcome
from sluice.chunkedgraph.tracker import (
    ChunksFailed,
    TableState,
    failed_message,
    hold_table,
    register_table,
    status_lines,
    table_dir,
    writers_lock,
)
from sluice.chunkedgraph.work import ChunkWork, WorkKind
from sluice.inflight import Overflow, bounded_futures
from sluice.jobs import nothing_to_submit
from sluice.names import TableName

SAVE_INTERVAL_SECONDS = 5.0


@flow(name="chunkedgraph-ingest")
def chunkedgraph_ingest(
    table: TableName,
    dataset: str,
    test: bool = False,
    raw: bool = False,
    work: ChunkWork = ChunkWork(),  # noqa: B008 - a frozen pydantic default
    batch_size: BatchSize = DEFAULT_BATCH_SIZE,
    window: Window = 4,
    requeue: bool = False,
    processes: Processes = 2,
    parallelism: Parallelism = DEFAULT_PARALLELISM,
    dask_address: str | None = None,
    dask_workers: Workers | None = None,
    aws_credentials_block: AwsCredentials | None = None,
    gcp_credentials_block: GcpCredentials | None = None,
    state_url: str | None = None,
) -> dict[int, list[int]]:
    """Ingest a ChunkedGraph table: layer-2 chunks, then every parent as soon as it can run.

    Args:
        table: The graph table name; its tracker state lives under $SLUICE_HOME/chunkedgraph.
        dataset: Path of the PyChunkedGraph dataset YAML.
        test: Only the children of the layer-3 chunk at bounds[3] // 2 and that parent.
        raw: PyChunkedGraph's --raw: the work reads raw edges and agglomeration
            (ingest_config USE_RAW_EDGES / USE_RAW_COMPONENTS; env vars for --command jobs).
        work: The chunk work (noop, callable by import path, or command on a backend).
        batch_size: Most layer-2 chunks per task run (whole sub-trees of this size).
        window: Batches in flight at once.
        requeue: Rerun the chunks that failed before (their failures are cleared first).
        processes: Local worker processes that run callable work; 0 runs it inside the
            task runs themselves (as on Dask workers).
        parallelism: Command work: most backend jobs in flight at once, across all batches.
        dask_address: Run callable work's batches on this existing Dask scheduler
            (tcp://host:port).
        dask_workers: Run callable work's batches on a temporary local Dask cluster.
        aws_credentials_block: AwsCredentials block for an s3:// watershed.
        gcp_credentials_block: GcpCredentials block for a gs:// watershed.
        state_url: Also keep the tracker snapshot at <state_url>/<table>/ (s3://, gs://,
            file://), and restore it from there onto an empty $SLUICE_HOME.

    Returns:
        {layer: [done, count]} at the end.

    Raises:
        ChunksFailed: chunks failed; the run ends Failed with the message the CLI prints.
    """
    logger = get_run_logger()
    directory = table_dir(table)
    check_ingest(work, dask_address=dask_address, dask_workers=dask_workers, state_url=state_url)
    storage = storage_for(aws_credentials_block, gcp_credentials_block)
    mirror = StateMirror(storage, state_url, table) if state_url else None
    config, grid = load_grid(dataset, storage)
    config = with_ingest_flags(config, raw=raw, test=test)
    options = {
        "raw": raw,
        # by name, for `requeue` to load again (an unsaved block cannot be)
        "aws_credentials_block": _saved_name(aws_credentials_block),
        "gcp_credentials_block": _saved_name(gcp_credentials_block),
        "state_url": state_url,
    }
    dask = bool(dask_address or dask_workers)
    with hold_table(table), contextlib.ExitStack() as stack:  # one ingest of a table at a time
        if mirror and mirror.restore(directory):
            logger.info("%s: tracker state restored from %s", table, mirror.base)
        register_table(directory, table, dataset, grid, work.model_dump(mode="json"), options)
        with writers_lock(directory, exclusive=True):  # no batch of a killed run still writing
            state = TableState.open(directory, grid)
        if requeue:
            state.clear_failures()
        history = History.load(directory, grid.layers)  # done per layer since the first run
        history.start_run(time.time(), state.done_count)

        def save(*, last: bool = False) -> None:
            state.save()
            history.record(time.time(), state.done_count, force=last)
            history.save(directory)
            if mirror:
                mirror.push(directory)

        save()
        scheduler = Scheduler(state, test=test, batch_size=batch_size)
        terminal = Terminal(logger.info)
        progress = {
            layer: stack.enter_context(
                ProgressReporter(
                    grid.count(layer),
                    f"{table} layer {layer}",
                    done=state.done_count[layer],
                    terminal=terminal,
                )
            )
            for layer in grid.layers
        }
        logger.info("%s: %d layers, %s layer-2 chunks", table, grid.layer_count, grid.count(2))

        jobs = pool = None
        if work.kind is WorkKind.COMMAND:
            backend = create_backend(work.backend, parallelism=parallelism)
            jobs = JobPool(backend, parallelism, replace=requeue)
            stack.callback(jobs.close)
        else:
            pool = stack.enter_context(local_processes(0 if dask else processes))
        # Command work: one more batch, up to twice the window, each time the job pool runs
        # dry because every batch in flight waits on its last parents (their tails overlap)
        overflow = None
        if jobs is not None:
            overflow = Overflow(2 * window, wanted=lambda: jobs.hungry)
            jobs.on_hungry = overflow.poke
        limit = window if overflow is None else overflow.ceiling
        runner = stack.enter_context(batch_runner(limit, dask_address, dask_workers))
        last_save = time.monotonic()
        submitted = 0

        def submit(batch: Batch) -> PrefectFuture:
            nonlocal submitted
            submitted += 1
            parameters = {
                "batch": batch,
                "grid": grid,
                "work": work,
                "config": config,
                "table": table,
                "processes": pool,
                "jobs": jobs,
            }
            return runner.submit(run_chunk_batch, parameters=parameters)

        # the next batch is asked for only after each ended one is recorded: parents it
        # completed go out at once, and only this thread reads or changes the done bits
        batches = bounded_futures(scheduler.next_batch, submit, window, overflow=overflow)
        for batch, future in batches:
            record_outcome(state, scheduler, batch, settled_outcome(batch, future.result))
            if time.monotonic() - last_save > SAVE_INTERVAL_SECONDS:
                save()
                last_save = time.monotonic()
            for layer, reporter in progress.items():
                reporter.update(state.done_count[layer])

        if not submitted and not state.failures:
            chunks = sum(state.done_count.values())
            logger.info("%s: %s", table, nothing_to_submit(chunks, chunks, "chunks", "done"))
        save(last=True)
        for reporter in progress.values():
            reporter.finish()  # the final counts, before the report
        publish_report(table, state, history, directory)
    for line in status_lines(state):
        logger.info(line.replace("\t", " "))
    if state.failures:
        raise ChunksFailed(failed_message(table, len(state.failures)))
    return {layer: [state.done_count[layer], grid.count(layer)] for layer in grid.layers}


def _saved_name(block: AwsCredentials | GcpCredentials | None) -> str | None:
    return block._block_document_name if block is not None else None


def run_ingest(
    table: str,
    dataset: str,
    *,
    test: bool = False,
    raw: bool = False,
    work: ChunkWork | None = None,
    workers: int = 2,
    parallelism: int = DEFAULT_PARALLELISM,
    dask_address: str | None = None,
    dask_workers: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    requeue: bool = False,
    aws_credentials_block: AwsCredentials | None = None,
    gcp_credentials_block: GcpCredentials | None = None,
    state_url: str | None = None,
) -> dict[int, list[int]]:
    """Run the flow with the CLI's sizing: ``window`` batches of task runs in flight."""
    work = work or ChunkWork()
    if work.kind is WorkKind.COMMAND:  # enough batches in flight to keep the pool full
        window = max(2 * workers, 2 * -(-parallelism // batch_size))
    else:
        window = 2 * (dask_workers or workers)
    return chunkedgraph_ingest(
        table=table,
        dataset=dataset,
        test=test,
        raw=raw,
        work=work,
        batch_size=batch_size,
        window=min(window, 10_000),
        requeue=requeue,
        processes=workers,
        parallelism=parallelism,
        dask_address=dask_address,
        dask_workers=dask_workers,
        aws_credentials_block=aws_credentials_block,
        gcp_credentials_block=gcp_credentials_block,
        state_url=state_url,
    )
