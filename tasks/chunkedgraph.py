"""The ChunkedGraph batch task: one task run per batch of chunks (a sub-tree or one parent),
the task runner the batches run on, and the ingest's report."""

from __future__ import annotations

from concurrent.futures import Executor
from functools import partial
from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from sluice.tasks.reports import artifact_key

from sluice.chunkedgraph.batch import Batch, BatchOutcome, execute_batch, run_batch_jobs
from sluice.chunkedgraph.chunks import ChunkGrid
from sluice.chunkedgraph.config import ingest_flags_env
from sluice.chunkedgraph.history import History
from sluice.chunkedgraph.pictures import write_table_page
from sluice.chunkedgraph.pool import JobPool
from sluice.chunkedgraph.tracker import REPORT_NAME, TableState, status_lines
from sluice.chunkedgraph.work import ChunkWork, WorkKind, chunk_job


@task(cache_policy=NO_CACHE, task_run_name="chunks {batch.label}")
def run_chunk_batch(
    batch: Batch,
    grid: ChunkGrid,
    work: ChunkWork,
    config: Any,
    table: str,
    processes: Executor | None = None,
    jobs: JobPool | None = None,
) -> BatchOutcome:
    """Run every chunk of ``batch`` (parents as soon as their children are done).

    ``command`` work goes to ``jobs``, the ingest's shared pool of backend jobs. Other
    work runs in ``processes`` (the flow's local worker processes) while this task run
    waits, or here (on a Dask worker) without them. Chunk failures are part of the
    outcome, not task failures, so one bad chunk never hides the rest.
    """
    if work.kind is WorkKind.COMMAND:
        if jobs is None:
            raise ValueError("command work needs the ingest's job pool")
        env = ingest_flags_env(config)
        return run_batch_jobs(batch, grid, jobs, partial(chunk_job, work, table, env=env))
    if processes is None:
        return execute_batch(batch, grid, work, config, table)
    return processes.submit(execute_batch, batch, grid, work, config, table).result()


def batch_runner(threads: int, dask_address: str | None, dask_workers: int | None) -> TaskRunner:
    """Prefect's thread task runner (task runs that wait on the local processes or the job
    pool), or prefect-dask's ``DaskTaskRunner`` on an existing scheduler (``dask_address``)
    or on a temporary local cluster of ``dask_workers``."""
    if dask_address or dask_workers:
        from prefect_dask import DaskTaskRunner

        if dask_address:
            return DaskTaskRunner(address=dask_address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": dask_workers, "threads_per_worker": 1})
    return ThreadPoolTaskRunner(max_workers=threads)


def publish_report(table: str, state: TableState, history: History, directory: Path) -> None:
    """Layer counts and failures as Prefect artifacts and ``report.md``; the picture of done
    per layer over time as ``report.html`` (linked from both)."""
    grid = state.grid
    rows = [
        {"layer": layer, "done": state.done_count[layer], "count": grid.count(layer)}
        for layer in grid.layers
    ]
    failures = [
        {"layer": layer, "coords": list(grid.coords(layer, index)), "error": error}
        for (layer, index), error in sorted(state.failures.items())
    ]
    page = write_table_page(directory, table, state, history)
    create_table_artifact(rows, key=artifact_key("chunkedgraph", table, "layers"))
    lines = [f"# ChunkedGraph ingest `{table}`", "", "```", *status_lines(state), "```", ""]
    lines += [f"- Pictures: `{page}` (open with `sluice report {directory}`)", ""]
    lines += [f"{len(failures)} failed chunks (`sluice chunkedgraph requeue {table}`)", ""]
    lines += [f"- layer {f['layer']} {f['coords']}: {f['error']}" for f in failures[:200]]
    markdown = "\n".join(lines) + "\n"
    create_markdown_artifact(markdown, description=f"ChunkedGraph ingest {table}")
    (directory / REPORT_NAME).write_text(markdown)
