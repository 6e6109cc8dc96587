"""The watershed batch's steps: the worker pool, a chunk (start, stage waves), the summary."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from sluice.tasks.reports import artifact_key, publish_markdown, publish_table

from sluice.watersheds.batch import BatchLayout, BatchState, LastRun, Summary, utcnow
from sluice.watersheds.execution import BatchExecution, RunPlan, WaveResult, summarize
from sluice.watersheds.pool import WorkerPool
from sluice.watersheds.rundir import RETRY_ELIGIBLE, RunState
from sluice.watersheds.stages import Stage


def pool_name(batch: str) -> str:
    """The batch's worker pool: a Prefect global concurrency limit."""
    return f"sluice-watersheds-{batch}"


@task(cache_policy=NO_CACHE)
def ensure_worker_pool(batch: str, size: int) -> str:
    """Create (or resize) the batch's global concurrency limit; idempotent."""
    name = pool_name(batch)
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, size)
    return name


def pool_limit(name: str) -> int:
    """The worker pool's size now: its global concurrency limit (``prefect gcl update``)."""
    with get_client(sync_client=True) as client:
        return client.read_global_concurrency_limit_by_name(name).limit


@task(cache_policy=NO_CACHE, task_run_name="{label}")
def run_chunk(
    execution: BatchExecution, chunk: list[RunPlan], pool: WorkerPool, label: str
) -> WaveResult:
    """Carry a chunk through start and its stage waves, holding one worker-pool slot.

    The chunk runs one watershed job at a time, so the pool limit bounds the
    jobs running at once. Each step is a nested task run. Returns the runs that
    finished and the failures (runid -> reason).
    """
    with pool.slot():
        started = start_chunk(execution, chunk, label)
        alive, failed = started.alive, dict(started.failed)
        for stage in execution.stages:
            if not any(stage in plan.todo for plan in alive):
                continue
            wave = run_stage_wave(execution, alive, stage, label)
            alive, failed = wave.alive, failed | wave.failed
    return WaveResult(alive=alive, failed=failed)


@task(cache_policy=NO_CACHE, task_run_name="start {label}")
def start_chunk(execution: BatchExecution, chunk: list[RunPlan], label: str) -> WaveResult:
    """Copy ``_base`` into the chunk's new run directories and mark its runs started."""
    return execution.start(chunk)


@task(cache_policy=NO_CACHE, task_run_name="{stage} {label}")
def run_stage_wave(
    execution: BatchExecution, chunk: list[RunPlan], stage: Stage, label: str
) -> WaveResult:
    """Run one stage for a chunk's watersheds, one job at a time."""
    return execution.wave(chunk, stage)


@task(cache_policy=NO_CACHE)
def publish_batch_summary(
    layout: BatchLayout,
    state: BatchState,
    runids: list[str],
    stages: list[Stage],
    failures: dict[str, str],
) -> Summary:
    """Classify every run, store the summary in the batch state, publish it as artifacts."""
    summary, states = summarize(layout, runids, stages)
    run = state.last_run or LastRun(started_at=utcnow(), tasks=[], force_rebuild=False)
    state.last_run = run.model_copy(
        update={"finished_at": utcnow(), "summary": summary, "failures": failures}
    )
    layout.save(state)
    publish_table.fn(
        artifact_key("watersheds", layout.name, "summary"),
        [{"state": k, "runs": v} for k, v in summary.model_dump().items()],
        f"watershed batch {layout.name}: runs by state",
    )
    publish_markdown.fn(
        artifact_key("watersheds", layout.name, "report"),
        _report(layout, summary, states, failures),
        f"watershed batch {layout.name}: summary and failures",
    )
    return summary


def _report(
    layout: BatchLayout, summary: Summary, states: dict[str, RunState], failures: dict[str, str]
) -> str:
    lines = [
        f"# Watershed batch `{layout.name}`",
        f"- **{summary.complete} / {summary.total}** runs complete, {summary.failed} failed, "
        f"{summary.incomplete} incomplete, {summary.missing} missing, {summary.invalid} invalid; "
        f"{summary.retry_eligible} retry-eligible",
        f"- Runs in `{layout.runs}`; state in `{layout.state_file}`",
    ]
    if failures:
        lines += ["", "| runid | failure |", "|---|---|"]
        lines += [f"| {runid} | {reason} |" for runid, reason in sorted(failures.items())[:200]]
    eligible = sorted(r for r, s in states.items() if s in RETRY_ELIGIBLE and r not in failures)
    if eligible:
        lines += ["", f"Other retry-eligible runs: {', '.join(eligible[:50])}"]
    return "\n".join(lines) + "\n"
