"""Running a batch: which watersheds need which stages, and one stage wave over a chunk.

A *chunk* is a list of watersheds that one Prefect task run carries through
its *waves*: ``start`` (copy ``_base`` where needed, mark runs started), then
one wave per stage in wepppy's order. Inside a wave the chunk's
watersheds run one job at a time, each recorded in the ledger through
``run_jobs`` (run ``watersheds/<batch>``, item ``<runid>/<stage>``). A watershed
whose stage fails leaves the chunk: its later stages are skipped and its
``run_metadata.json`` says why; its siblings go on.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sluice.backends.base import Backend
from sluice.execute import Planned, run_jobs
from sluice.jobs import JobResult, JobSpec, Outcome
from sluice.ledger.base import Attempt, Ledger
from sluice.watersheds.batch import BatchLayout, Summary, utcnow
from sluice.watersheds.callables import InProcessBackend
from sluice.watersheds.features import Watershed
from sluice.watersheds.rundir import (
    RETRY_ELIGIBLE,
    RunMetadata,
    RunState,
    classify,
    done_stages,
    mark_done,
    provision,
    read_metadata,
    write_metadata,
)
from sluice.watersheds.stages import Stage, StageCatalogue, StageCommand, stage_job


@dataclass(frozen=True)
class RunPlan:
    """What one watershed does in this flow run."""

    runid: str
    todo: tuple[Stage, ...]
    provision: bool


@dataclass
class WaveResult:
    """Which of a chunk's runs go on after a wave, and which failed in it (runid -> reason)."""

    alive: list[RunPlan]
    failed: dict[str, str] = field(default_factory=dict)


def plan_runs(
    layout: BatchLayout, watersheds: list[Watershed], stages: list[Stage], force_rebuild: bool
) -> list[RunPlan]:
    """Each watershed's stages still to run (all of them when ``force_rebuild``), in order given."""
    plans = []
    for watershed in watersheds:
        run_dir = layout.run_dir(watershed.runid)
        exists = run_dir.is_dir()
        done = done_stages(run_dir) if exists and not force_rebuild else {}
        todo = tuple(s for s in stages if s.value not in done)
        if todo:
            plans.append(RunPlan(watershed.runid, todo, provision=force_rebuild or not exists))
    return plans


def chunked(plans: list[RunPlan], max_chunks: int) -> list[list[RunPlan]]:
    """At most ``max_chunks`` chunks dealt round-robin, so every chunk starts with a large one."""
    count = max(1, min(max_chunks, len(plans)))
    return [chunk for chunk in (plans[i::count] for i in range(count)) if chunk]


class BatchExecution:
    """Everything a wave needs: the batch, its stage commands, a backend and the ledger.

    ``job`` (the flow run id) goes into each ``run_metadata.json`` as wepppy's RQ job id did.
    """

    def __init__(
        self,
        layout: BatchLayout,
        catalogue: StageCatalogue,
        stages: list[Stage],
        backend: Backend,
        ledger: Ledger,
        *,
        job: str | None = None,
        on_stage_end: Callable[[str, Stage, JobResult], None] | None = None,
    ) -> None:
        self.layout = layout
        self.catalogue = catalogue
        self.stages = stages
        self.backend = backend
        self.ledger = ledger
        self.run = layout.ledger_run
        self.token = uuid.uuid4().hex
        self.job = job
        self._orphans = {i: a for i, a in ledger.latest(self.run).items() if a.running}
        self.on_stage_end = on_stage_end

    def start(self, chunk: list[RunPlan]) -> WaveResult:
        """Provision the chunk's new (or rebuilt) run directories; mark every run started."""
        result = WaveResult(alive=[])
        for plan in chunk:
            run_dir = self.layout.run_dir(plan.runid)
            try:
                if plan.provision:
                    provision(self.layout.base, run_dir)
                write_metadata(
                    run_dir,
                    RunMetadata(
                        runid=plan.runid,
                        batch_name=self.layout.name,
                        status="running",
                        started_at=utcnow(),
                        task_status=self._task_status(run_dir),
                    ),
                )
            except OSError as exc:
                result.failed[plan.runid] = f"provisioning: {exc}"
                continue
            result.alive.append(plan)
        return result

    def wave(self, chunk: list[RunPlan], stage: Stage) -> WaveResult:
        """Run ``stage`` for the chunk's runs that need it, one job at a time."""
        result = WaveResult(alive=[])
        command = self.catalogue.command_for(stage)
        for plan in chunk:
            if stage not in plan.todo:
                result.alive.append(plan)
                continue
            ended = self._run_stage(plan, stage, command)
            if ended.outcome is Outcome.SUCCEEDED:
                result.alive.append(plan)
                if stage == plan.todo[-1]:
                    self._finish(plan, "completed")
            else:
                reason = ended.reason or "failed"
                detail = f"{stage.value}: {reason}"
                if ended.message:
                    detail += f" ({ended.message})"
                result.failed[plan.runid] = detail
                self._finish(plan, "failed", error={"stage": stage.value, "reason": detail})
        return result

    def _run_stage(self, plan: RunPlan, stage: Stage, command: StageCommand) -> JobResult:
        run_dir = self.layout.run_dir(plan.runid)
        job = stage_job(
            command,
            batch=self.layout.name,
            runid=plan.runid,
            run_dir=run_dir,
            stage=stage,
            token=self.token,
        )
        item = f"{plan.runid}/{stage.value}"
        if orphan := self._orphans.pop(item, None):
            job = self._adopt(orphan, job)
        backend = self.backend if command.callable is None else InProcessBackend()
        results = run_jobs(
            backend,
            self.ledger,
            self.run,
            f"{self.run}/{stage.value}",
            [Planned(item=item, job=job)],
            timeout=command.timeout_seconds,
        )
        ended = results[item]
        if ended.outcome is Outcome.SUCCEEDED:
            mark_done(run_dir, stage, ended.finished_at or utcnow())
        if self.on_stage_end:
            self.on_stage_end(plan.runid, stage, ended)
        return ended

    def _adopt(self, orphan: Attempt, job: JobSpec) -> JobSpec:
        """An attempt left running by a stopped orchestrator: record it lost and reuse its
        job name, so a backend where that job still runs adopts it instead of starting
        a second copy."""
        self.ledger.finish(
            orphan.id,
            JobResult(
                name=orphan.job_name,
                outcome=Outcome.LOST,
                message="the orchestrator stopped; a later run adopted the job by name",
            ),
        )
        return job.model_copy(update={"name": orphan.job_name})

    def _task_status(self, run_dir: Path) -> dict[str, str | None]:
        done = done_stages(run_dir)
        return {stage.value: done.get(stage.value) for stage in self.stages}

    def _finish(self, plan: RunPlan, status: str, error: dict[str, str] | None = None) -> None:
        run_dir = self.layout.run_dir(plan.runid)
        previous = read_metadata(run_dir)
        started = previous.started_at if previous else utcnow()
        now = utcnow()
        write_metadata(
            run_dir,
            RunMetadata(
                runid=plan.runid,
                batch_name=self.layout.name,
                status=status,
                started_at=started,
                completed_at=now,
                duration_seconds=round((now - started).total_seconds(), 3),
                job=self.job,
                task_status=self._task_status(run_dir),
                error=error,
            ),
        )


def summarize(
    layout: BatchLayout, runids: list[str], stages: list[Stage]
) -> tuple[Summary, dict[str, RunState]]:
    """Classify every run of the batch (wepppy's finalizer counts)."""
    states = {runid: classify(layout.runs, runid, stages) for runid in runids}
    counts = Counter(states.values())
    summary = Summary(
        total=len(runids),
        complete=counts[RunState.COMPLETE],
        failed=counts[RunState.FAILED],
        incomplete=counts[RunState.INCOMPLETE],
        missing=counts[RunState.MISSING],
        invalid=counts[RunState.INVALID],
        retry_eligible=sum(counts[s] for s in RETRY_ELIGIBLE),
    )
    return summary, states
