"""The ChunkedGraph batch task: one task run per batch of chunks (a sub-tree or one parent)."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from sluice.chunkedgraph.batch import Batch, run_batch
from sluice.chunkedgraph.chunks import ChunkGrid
from sluice.chunkedgraph.work import ChunkWork, chunk_runner


@task(cache_policy=NO_CACHE, task_run_name="chunks {batch.label}")
def run_chunk_batch(
    batch: Batch, grid: ChunkGrid, work: ChunkWork, config: Any, table: str
) -> bytes:
    """Run every chunk of ``batch`` (parents as soon as their children are done).

    Returns the batch's encoded done/failed records; chunk failures are records, not
    task failures, so one bad chunk never hides the rest of its batch.
    """
    runner = chunk_runner(work, config, table)
    try:
        return run_batch(batch, grid, runner)
    finally:
        if close := getattr(runner, "close", None):
            close()
