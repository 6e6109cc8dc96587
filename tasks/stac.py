"""STAC batch steps as Prefect tasks: one task run per chunk of items (per stage), not per item."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from pystac import Item
from sluice.tasks.retry import retry_on

from sluice.errors import BackendUnavailable
from sluice.jobs import JobResult
from sluice.stac.execution import (
    BatchContext,
    finish_items,
    plan_chunk,
    run_pipeline_chunk,
    run_stage,
)
from sluice.stac.inputs import write_aois
from sluice.stac.stages import Catchment, ItemStages

_backend_retry: dict[str, Any] = {
    "retries": 2,
    "retry_delay_seconds": 5,
    "retry_condition_fn": retry_on(BackendUnavailable),
}


@task(cache_policy=NO_CACHE, task_run_name="aois[{batch}]")
def write_aoi_files(
    ctx: BatchContext, batch: str, items: Sequence[Item], temp_dir: Path, local_output: bool
) -> dict[str, str]:
    """Every item's AOI GeoPackage at ``<output_root>/AOIs/stac_<id>.gpkg``."""
    return write_aois(ctx.outputs, items, temp_dir, local_output)


@task(cache_policy=NO_CACHE, task_run_name="pipelines[{chunk}]", **_backend_retry)
def pipelines(ctx: BatchContext, chunk: str, items: Sequence[Item]) -> dict[str, str]:
    """Dispatch and await the ``pipeline`` job of every item of a chunk."""
    return _outcomes(run_pipeline_chunk(ctx, items))


@task(cache_policy=NO_CACHE, task_run_name="plan[{chunk}]")
def plan(
    ctx: BatchContext, chunk: str, items: Sequence[Item], index: list[Catchment]
) -> list[ItemStages]:
    """Select catchments and write stage inputs for a chunk (stage mode)."""
    return plan_chunk(ctx, items, index)


@task(cache_policy=NO_CACHE, task_run_name="{stage}[{chunk}]", **_backend_retry)
def stage(ctx: BatchContext, stage: str, chunk: str, plans: list[ItemStages]) -> list[str]:
    """One stage for a chunk, batched into few jobs, failed jobs retried; the items that failed."""
    return sorted(run_stage(ctx, stage, chunk, plans))


@task(cache_policy=NO_CACHE, task_run_name="finish[{chunk}]")
def finish(
    ctx: BatchContext, chunk: str, plans: list[ItemStages], failed: list[list[str]]
) -> dict[str, str]:
    """Record each item's stage-mode outcome."""
    return _outcomes(finish_items(ctx, chunk, plans, {i for f in failed for i in f}))


def _outcomes(results: dict[str, JobResult]) -> dict[str, str]:
    return {item: result.outcome.value for item, result in results.items()}
