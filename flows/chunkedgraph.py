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
import queue
import time
from pathlib import Path
from typing import cast
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.futures import PrefectFuture
from sluice.tasks.chunkedgraph import run_chunk_batch
from sluice.tasks.reports import artifact_key

from sluice.backends.factory import create_backend
from sluice.chunkedgraph.batch import Batch, BatchOutcome
from sluice.chunkedgraph.config import load_grid, with_ingest_flags
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
from sluice.chunkedgraph.runners import batch_runner, local_processes
from sluice.chunkedgraph.schedule import DEFAULT_BATCH_SIZE, Scheduler
from sluice.chunkedgraph.tracker import (
    FAILED,
    ChunksFailed,
    Record,
    TableState,
    append_records,
    decode,
    failed_message,
    register_table,
    status_lines,
    table_dir,
    table_lock,
    writers_lock,
)
from sluice.chunkedgraph.work import ChunkWork, WorkKind
from sluice.names import TableName
from sluice.storage import storage_from_blocks

SAVE_INTERVAL_SECONDS = 5.0
PROGRESS_INTERVAL_SECONDS = 2.0


class LayerProgress:
    """One Prefect progress artifact per layer, updated at most every few seconds."""

    def __init__(self, table: str, state: TableState) -> None:
        self._table, self._state = table, state
        self._ids = {
            # A sync call returns the id (prefect's async_dispatch annotates "or a coroutine").
            layer: cast(
                UUID,
                create_progress_artifact(self._percent(layer), description=self._text(layer)),
            )
            for layer in state.grid.layers
        }
        self._shown = dict(state.done_count)
        self._last = time.monotonic()

    def _percent(self, layer: int) -> float:
        return 100.0 * self._state.done_count[layer] / self._state.grid.count(layer)

    def _text(self, layer: int) -> str:
        done, count = self._state.done_count[layer], self._state.grid.count(layer)
        return f"{self._table} layer {layer}: {done} / {count}"

    def update(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._last < PROGRESS_INTERVAL_SECONDS:
            return
        self._last = time.monotonic()
        for layer, artifact in self._ids.items():
            if self._state.done_count[layer] != self._shown[layer]:
                self._shown[layer] = self._state.done_count[layer]
                update_progress_artifact(artifact, self._percent(layer), self._text(layer))


def batch_outcome(batch: Batch, future: PrefectFuture) -> BatchOutcome:
    """What the batch did; if the batch itself crashed, what its segment kept plus a
    failure for every chunk it did not record (so ``requeue`` reruns them)."""
    segment = Path(batch.segment)
    try:
        outcome = future.result()
    except Exception as error:
        records = list(decode(segment.read_bytes())) if segment.exists() else []
        seen = {(record.layer, record.index) for record in records}
        lost = [
            Record(FAILED, layer, index, f"batch crashed: {type(error).__name__}: {error}")
            for layer, index in batch.todo
            if (layer, index) not in seen
        ]
        append_records(segment, lost)
        return BatchOutcome.of(records + lost)
    if not segment.exists():  # ran where $SLUICE_HOME is not shared: keep it here
        append_records(segment, outcome.records())
    return outcome


def record_outcome(
    state: TableState, scheduler: Scheduler, batch: Batch, outcome: BatchOutcome
) -> None:
    """Set the batch's done bits and failures; queue the parents it completed."""
    newly_done = []
    for layer, indices in outcome.done.items():
        newly = state.mark_done(layer, indices)
        if layer >= scheduler.subtree:
            newly_done += [(layer, index) for index in newly]
    for layer, index, error in outcome.failed:
        state.mark_failed(layer, index, error)
    state.mark_absorbed(Path(batch.segment))
    scheduler.absorb(newly_done)


def publish_report(table: str, state: TableState, directory: Path) -> None:
    """Layer counts and failures as Prefect artifacts and as ``report.md``."""
    grid = state.grid
    rows = [
        {"layer": layer, "done": state.done_count[layer], "count": grid.count(layer)}
        for layer in grid.layers
    ]
    failures = [
        {"layer": layer, "coords": list(grid.coords(layer, index)), "error": error}
        for (layer, index), error in sorted(state.failures.items())
    ]
    create_table_artifact(rows, key=artifact_key("chunkedgraph", table, "layers"))
    lines = [f"# ChunkedGraph ingest `{table}`", "", "```", *status_lines(state), "```", ""]
    lines += [f"{len(failures)} failed chunks (`sluice chunkedgraph requeue {table}`)", ""]
    lines += [f"- layer {f['layer']} {f['coords']}: {f['error']}" for f in failures[:200]]
    markdown = "\n".join(lines) + "\n"
    create_markdown_artifact(markdown, description=f"ChunkedGraph ingest {table}")
    (directory / "report.md").write_text(markdown)


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
    aws_credentials_block: str | None = None,
    gcp_credentials_block: str | None = None,
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
    storage = storage_from_blocks(aws_credentials_block, gcp_credentials_block)
    mirror = StateMirror(storage, state_url, table) if state_url else None
    config, grid = load_grid(dataset, storage)
    config = with_ingest_flags(config, raw=raw, test=test)
    options = {
        "raw": raw,
        "aws_credentials_block": aws_credentials_block,
        "gcp_credentials_block": gcp_credentials_block,
        "state_url": state_url,
    }
    dask = bool(dask_address or dask_workers)
    with table_lock(directory), contextlib.ExitStack() as stack:
        if mirror and mirror.restore(directory):
            logger.info("%s: tracker state restored from %s", table, mirror.base)
        register_table(directory, table, dataset, grid, work.model_dump(mode="json"), options)
        with writers_lock(directory, exclusive=True):  # no batch of a killed run still writing
            state = TableState.open(directory, grid)
        if requeue:
            state.clear_failures()

        def save() -> None:
            state.save()
            if mirror:
                mirror.push(directory)

        save()
        scheduler = Scheduler(state, test=test, batch_size=batch_size)
        progress = LayerProgress(table, state)
        logger.info("%s: %d layers, %s layer-2 chunks", table, grid.layer_count, grid.count(2))

        jobs = pool = None
        if work.kind is WorkKind.COMMAND:
            backend = create_backend(work.backend, parallelism=parallelism)
            jobs = JobPool(backend, parallelism, replace=requeue)
            stack.callback(jobs.close)
        else:
            pool = stack.enter_context(local_processes(0 if dask else processes))
        runner = stack.enter_context(batch_runner(window, dask_address, dask_workers))
        finished: queue.SimpleQueue[str] = queue.SimpleQueue()
        in_flight: dict[str, tuple[Batch, PrefectFuture]] = {}
        last_save = time.monotonic()
        while True:
            while len(in_flight) < window and (batch := scheduler.next_batch()):
                parameters = {
                    "batch": batch,
                    "grid": grid,
                    "work": work,
                    "config": config,
                    "table": table,
                    "processes": pool,
                    "jobs": jobs,
                }
                future: PrefectFuture = runner.submit(run_chunk_batch, parameters=parameters)
                in_flight[batch.segment] = (batch, future)

                def signal(_: PrefectFuture, key: str = batch.segment) -> None:
                    finished.put(key)

                future.add_done_callback(signal)
            if not in_flight:
                break
            batch, future = in_flight.pop(finished.get())
            record_outcome(state, scheduler, batch, batch_outcome(batch, future))
            if time.monotonic() - last_save > SAVE_INTERVAL_SECONDS:
                save()
                last_save = time.monotonic()
            progress.update()

        save()
        progress.update(force=True)
        publish_report(table, state, directory)
    for line in status_lines(state):
        logger.info(line.replace("\t", " "))
    if state.failures:
        raise ChunksFailed(failed_message(table, len(state.failures)))
    return {layer: [state.done_count[layer], grid.count(layer)] for layer in grid.layers}


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
    aws_credentials_block: str | None = None,
    gcp_credentials_block: str | None = None,
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
