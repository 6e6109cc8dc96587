"""The ChunkedGraph batch task: one task run per batch of chunks (a sub-tree or one parent),
and the task runner the batches run on."""

from __future__ import annotations

from concurrent.futures import Executor
from functools import partial
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from sluice.chunkedgraph.batch import Batch, BatchOutcome, execute_batch, run_batch_jobs
from sluice.chunkedgraph.chunks import ChunkGrid
from sluice.chunkedgraph.config import ingest_flags_env
from sluice.chunkedgraph.pool import JobPool
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
