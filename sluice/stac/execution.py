"""Running a chunk of STAC items: whole pipelines, or one stage of stage mode.

Every job goes through ``run_jobs`` (ledger before submission, each ending
recorded as it arrives). Ledger runs: ``stac/<batch>`` holds one row per item
attempt (item = the STAC item id); ``stac/<batch>/<stage>`` holds stage jobs.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pystac import Item

from sluice.backends.base import Backend
from sluice.execute import Planned, run_jobs
from sluice.jobs import JobResult, JobSpec, Outcome
from sluice.ledger.base import Ledger, PlannedAttempt
from sluice.stac.dispatch import dispatch_spec, job_name
from sluice.stac.inputs import aoi_geometry
from sluice.stac.outputs import StorageRoot, redact
from sluice.stac.reports import FAILED_MARK
from sluice.stac.stages import Catchment, ItemStages, plan_item

STAGES = ("inundate", "mosaic", "agreement")
EARLY_EXIT = "Pipeline exiting early: no scenarios or catchments"


@dataclass
class BatchContext:
    """What every chunk of a batch shares."""

    batch: str
    backend: Backend
    ledger: Ledger
    outputs: StorageRoot
    aois: dict[str, str]
    hand_index_path: str
    benchmark_sources: list[str]
    pipeline_command: list[str]
    stage_command: list[str]
    job_env: dict[str, str]
    log_dir: Path
    secrets: list[str] = field(default_factory=list)
    overlap_percent: float = 40.0
    catchments_per_job: int = 500
    entries_per_job: int = 20
    stage_retries: int = 2
    memory_bytes: dict[str, int] = field(default_factory=dict)
    timeout: float | None = None
    on_item: Callable[[str, JobResult], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def run(self) -> str:
        return f"stac/{self.batch}"

    def save_log(self, item: str, text: str) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self._lock, (self.log_dir / f"{item}.log").open("a") as out:
            out.write(redact(text, self.secrets))

    def attempt_names(self, run: str, kind: str, keys: Sequence[str]) -> dict[str, str]:
        """Job names for ``keys``: a still-running attempt's name (adopt it), else a new one."""
        attempts = defaultdict(list)
        for attempt in self.ledger.attempts(run, keys):
            attempts[attempt.item].append(attempt)
        names = {}
        for key in keys:
            previous = attempts[key]
            if previous and previous[-1].running:
                names[key] = previous[-1].job_name
            else:
                names[key] = job_name(kind, self.batch, key, len(previous))
        return names


def pipeline_meta(ctx: BatchContext, item: Item) -> dict[str, str]:
    """The seed's meta for one ``pipeline`` dispatch (never a credential)."""
    return {
        "aoi": ctx.aois[item.id],
        "outputs_path": ctx.outputs.url(item.id) + "/",
        "hand_index_path": ctx.hand_index_path,
        "benchmark_sources": ",".join(ctx.benchmark_sources),
        "tags": f"batch_name={ctx.batch} aoi_name={item.id}",
    }


def run_pipeline_chunk(ctx: BatchContext, items: Sequence[Item]) -> dict[str, JobResult]:
    """Dispatch the ``pipeline`` job for each item and wait for all of them."""
    names = ctx.attempt_names(ctx.run, "pipeline", [i.id for i in items])
    planned = [
        Planned(
            item.id,
            dispatch_spec(
                name=names[item.id],
                parameterized_job="pipeline",
                meta=pipeline_meta(ctx, item),
                command=ctx.pipeline_command,
                env=ctx.job_env,
                memory_bytes=ctx.memory_bytes.get("pipeline"),
            ),
        )
        for item in items
    ]
    return run_jobs(
        ctx.backend,
        ctx.ledger,
        ctx.run,
        "stac-pipeline",
        planned,
        timeout=ctx.timeout,
        classify=lambda item, result: classify_pipeline(ctx, item, result),
        on_result=ctx.on_item,
    )


def classify_pipeline(ctx: BatchContext, item: str, result: JobResult) -> JobResult:
    """Save the pipeline's log; "Pipeline FAILED" in it fails an exit-0 job (as the seed)."""
    log = ctx.backend.logs(result.name)
    ctx.save_log(item, log)
    if result.outcome is Outcome.SUCCEEDED:
        marks = [line.strip() for line in log.splitlines() if FAILED_MARK in line]
        if marks:
            return result.model_copy(
                update={"outcome": Outcome.FAILED, "message": redact(marks[-1], ctx.secrets)[:500]}
            )
    return result


def plan_chunk(
    ctx: BatchContext, items: Sequence[Item], index: list[Catchment]
) -> list[ItemStages]:
    """Catchments, data files and stage meta for each item of a chunk."""
    return [
        plan_item(
            item,
            ctx.aois[item.id],
            StorageRoot(ctx.outputs.url(item.id), ctx.outputs.credentials),
            index,
            ctx.overlap_percent,
            aoi_geometry(item),
        )
        for item in items
    ]


def run_stage(ctx: BatchContext, stage: str, chunk: str, plans: Sequence[ItemStages]) -> set[str]:
    """Run one stage for a chunk: entries batched into jobs, failed jobs retried one entry each.

    Returns the items with an entry that still failed after ``stage_retries``.
    """
    entries = [(p.item_id, row) for p in plans for row in getattr(p, stage)]
    size = ctx.catchments_per_job if stage == "inundate" else ctx.entries_per_job
    batches = [entries[i : i + size] for i in range(0, len(entries), size)]
    run = f"{ctx.run}/{stage}"
    for retry in range(ctx.stage_retries + 1):
        if not batches:
            return set()
        by_key = {f"{chunk}-{retry}-{n}": batch for n, batch in enumerate(batches)}
        names = ctx.attempt_names(run, stage, list(by_key))
        planned = [Planned(k, stage_job(ctx, stage, names[k], b)) for k, b in by_key.items()]
        results = run_jobs(
            ctx.backend, ctx.ledger, run, f"stac-{stage}", planned, timeout=ctx.timeout
        )
        batches = []
        for key, batch in by_key.items():
            if results[key].outcome is Outcome.SUCCEEDED:
                continue
            log = f"--- {stage} job {names[key]}: {results[key].reason}\n"
            log += ctx.backend.logs(names[key])
            for item in {i for i, _ in batch}:
                ctx.save_log(item, log)
            batches += [[entry] for entry in batch]  # retried one entry per job
    if stage == "inundate":  # a failed catchment is tolerated; mosaic fails if none exist
        return set()
    return {item for batch in batches for item, _ in batch}


def stage_job(ctx: BatchContext, stage: str, name: str, batch: list[tuple[str, dict]]) -> JobSpec:
    """A stage job: its manifest (one row of the seed's meta per entry) written first.

    The command runs every row (the stand-ins do); on Nomad it is dispatched through
    the generic ``sluice-job``, since the seed's stage jobs take one entry each.
    """
    manifest = ctx.outputs.write(
        f"{ctx.batch}/manifests/{stage}/{name}.jsonl",
        "".join(json.dumps(row) + "\n" for _, row in batch).encode(),
    )
    return JobSpec(
        name=name,
        command=[*ctx.stage_command, stage, "--manifest", manifest],
        env=ctx.job_env,
        memory_bytes=ctx.memory_bytes.get(stage),
        labels={"sluice/stage": stage},
    )


def finish_items(
    ctx: BatchContext, chunk: str, plans: Sequence[ItemStages], failed: set[str]
) -> dict[str, JobResult]:
    """Record each item's stage-mode ending in the ledger (an expected-empty item succeeded)."""
    now = datetime.now(UTC)
    results = {}
    for plan in plans:
        if plan.expected_empty:
            outcome, message = Outcome.SUCCEEDED, EARLY_EXIT
        elif plan.item_id in failed:
            outcome, message = Outcome.FAILED, f"{FAILED_MARK}: a mosaic or agreement failed"
        else:
            outcome, message = (
                Outcome.SUCCEEDED,
                f"Pipeline SUCCESS {len(plan.agreement)}/{len(plan.agreement)}",
            )
        results[plan.item_id] = JobResult(
            name=f"stages-{chunk}", outcome=outcome, message=message, finished_at=now
        )
        ctx.save_log(plan.item_id, message + "\n")
    ids = ctx.ledger.begin(
        ctx.run,
        "stac-stages",
        [PlannedAttempt(item=i, job_name=r.name) for i, r in results.items()],
    )
    ctx.ledger.finish_many(list(zip(ids, results.values(), strict=True)))
    if ctx.on_item:
        for item, result in results.items():
            ctx.on_item(item, result)
    return results
