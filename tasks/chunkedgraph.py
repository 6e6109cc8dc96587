"""The ChunkedGraph batch task: one task run per batch of chunks (a sub-tree or one parent)."""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from sluice.chunkedgraph.batch import Batch, BatchOutcome, execute_batch
from sluice.chunkedgraph.chunks import ChunkGrid
from sluice.chunkedgraph.work import ChunkWork


@task(cache_policy=NO_CACHE, task_run_name="chunks {batch.label}")
def run_chunk_batch(
    batch: Batch,
    grid: ChunkGrid,
    work: ChunkWork,
    config: Any,
    table: str,
    processes: Executor | None = None,
) -> BatchOutcome:
    """Run every chunk of ``batch`` (parents as soon as their children are done).

    With ``processes`` (the flow's local worker processes) the chunks run there and
    this task run only waits; otherwise (a Dask worker) they run here. Chunk failures
    are part of the outcome, not task failures, so one bad chunk never hides the rest.
    """
    if processes is None:
        return execute_batch(batch, grid, work, config, table)
    return processes.submit(execute_batch, batch, grid, work, config, table).result()
