"""Running a chunk of STAC items: whole pipelines, or one stage of stage mode.

Every job goes through ``run_jobs`` (ledger before submission, each ending
recorded as it arrives). Ledger runs: ``stac/<batch>`` holds one row per item
attempt (item = the STAC item id); ``stac/<batch>/<stage>`` holds stage jobs.

Memory: a job first runs as its kind of job gives it (Nomad: the registered job's own
memory, no variant); one killed for memory runs again a tier up (``MemoryTiers``).
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pystac import Item

from sluice.backends.base import Backend
from sluice.execute import Planned, run_jobs
from sluice.jobs import JobResult, JobSpec, Outcome
from sluice.ledger.base import Attempt, Ledger, PlannedAttempt
from sluice.stac.batch import run_name
from sluice.stac.dispatch import dispatch_spec, job_name
from sluice.stac.inputs import aoi_geometry
from sluice.stac.logs import JOB_TASKS, STAGE_JOBS, LogTree, Message, log_messages, split_entries
from sluice.stac.outputs import StorageRoot, redact
from sluice.stac.reports import (
    EARLY_EXIT_MARK,
    FAILED_MARK,
    SUCCESS_MARK,
    item_succeeded,
    stage_errors,
)
from sluice.stac.stages import Catchment, ItemStages, plan_item

STAGES = ("inundate", "mosaic", "agreement")
MAX_TIER = 5  # 32x the registered job's memory


@dataclass(frozen=True)
class MemoryTiers:
    """OOM escalation. Tier 0 asks for no memory: the job runs as its kind gives it
    (``base_bytes``, the registered Nomad job's; None where jobs have no limit, which
    an OOM cannot raise). Tier n asks for ``base_bytes * 2**n``, up to ``max_tier``."""

    base_bytes: int | None = None
    max_tier: int = 0

    def memory_bytes(self, tier: int) -> int | None:
        return None if tier == 0 or self.base_bytes is None else self.base_bytes * 2**tier

    def after(self, tier: int, outcome: Outcome | None) -> int | None:
        """The tier to run again at after ``outcome`` at ``tier``; None: no higher tier."""
        if outcome is Outcome.OOM and self.base_bytes is not None and tier < self.max_tier:
            return tier + 1
        return None

    def resume(self, last: Attempt | None) -> int:
        """Where a new attempt starts: the last one's tier, one up if it was killed for memory."""
        if last is None:
            return 0
        tier = min(last.tier or 0, self.max_tier)
        return self.after(tier, last.outcome) or tier


@dataclass(frozen=True)
class Try:
    """One job to run for a key: its name, memory tier and memory (None: the job's own)."""

    name: str
    tier: int = 0
    memory_bytes: int | None = None


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
    logs: LogTree
    secrets: list[str] = field(default_factory=list)
    overlap_percent: float = 40.0
    catchments_per_job: int = 500
    entries_per_job: int = 20
    stage_retries: int = 2
    tiers: MemoryTiers = field(default_factory=MemoryTiers)
    timeout: float | None = None
    on_item: Callable[[str, JobResult], None] | None = None
    collections: dict[str, str] = field(default_factory=dict)
    stage_messages: defaultdict[str, list[Message]] = field(
        default_factory=lambda: defaultdict(list)
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def run(self) -> str:
        return run_name(self.batch)

    def save_log(
        self, job: str, item: str, tags: dict[str, str], name: str, text: str
    ) -> list[Message]:
        """Save (redacted) one item's part of job ``name``'s log; its messages."""
        text = redact(text, self.secrets)
        with self._lock:
            path = self.logs.write(job, item, tags, name, text)
        task, file = JOB_TASKS[job], str(path.relative_to(self.logs.root))
        return [Message(item, job, task, file, m) for m in log_messages(text)]

    def supersede(self, items: set[str]) -> None:
        """Move the saved logs of ``items``, about to run again, out of the report's tree."""
        if items:
            with self._lock:
                self.logs.supersede(items, self.logs.root.parent / "superseded-logs")

    def tries(
        self, run: str, kind: str, keys: Sequence[str], tiers: dict[str, int] | None = None
    ) -> dict[str, Try]:
        """The job to run for each of ``keys``: a still-running attempt is adopted as it was
        (name, tier, memory); otherwise a new name at ``tiers[key]`` (default: the tier the
        key's last attempt had, one up if it was killed for memory)."""
        attempts = defaultdict(list)
        for attempt in self.ledger.attempts(run, keys):
            attempts[attempt.item].append(attempt)
        tries = {}
        for key in keys:
            previous = attempts[key]
            last = previous[-1] if previous else None
            if last is not None and last.running:
                tries[key] = Try(last.job_name, last.tier or 0, last.memory_bytes)
                continue
            tier = tiers[key] if tiers is not None else self.tiers.resume(last)
            name = job_name(kind, self.batch, key, len(previous))
            tries[key] = Try(name, tier, self.tiers.memory_bytes(tier))
        return tries


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
    """Dispatch the ``pipeline`` job for each item and wait for all of them; an item
    killed for memory runs again a tier up (``ctx.tiers``) until it ends otherwise."""
    results: dict[str, JobResult] = {}
    todo = list(items)
    while todo:
        todo = _pipeline_round(ctx, todo, results)
        ctx.supersede({i.id for i in todo})  # the report reads the newest attempt's log
    return results


def _pipeline_round(
    ctx: BatchContext, items: Sequence[Item], results: dict[str, JobResult]
) -> list[Item]:
    """One dispatch of each item's pipeline (results into ``results``); the items to run
    again a tier up."""
    tries = ctx.tries(ctx.run, "pipeline", [i.id for i in items])
    planned = [
        Planned(
            item.id,
            dispatch_spec(
                name=tries[item.id].name,
                parameterized_job="pipeline",
                meta=pipeline_meta(ctx, item),
                command=ctx.pipeline_command,
                env=ctx.job_env,
                memory_bytes=tries[item.id].memory_bytes,
            ),
            tier=tries[item.id].tier,
        )
        for item in items
    ]

    def again(item: str, result: JobResult) -> bool:
        return ctx.tiers.after(tries[item].tier, result.outcome) is not None

    def on_result(item: str, result: JobResult) -> None:
        if ctx.on_item and not again(item, result):  # an item ends once
            ctx.on_item(item, result)

    ended = run_jobs(
        ctx.backend,
        ctx.ledger,
        ctx.run,
        "stac-pipeline",
        planned,
        timeout=ctx.timeout,
        classify=lambda item, result: classify_pipeline(ctx, item, result),
        on_result=on_result,
    )
    results.update(ended)
    return [item for item in items if again(item.id, ended[item.id])]


def ending_line(result: JobResult) -> str:
    """How a job that did not succeed ended, in words the seed's report rules classify."""
    reason = f"job {result.name} ended {result.reason}"
    if result.message:
        reason += f" ({result.message})"
    if result.outcome is Outcome.OOM:
        return f"OOM: {reason}\n"
    if result.outcome is Outcome.TIMEOUT:
        return f"JobStatus.STOPPED (timeout): {reason}\n"
    if result.outcome in (Outcome.LOST, Outcome.CANCELLED):
        return f"JobStatus.{result.outcome.value.upper()}: {reason}\n"
    return f"{FAILED_MARK}: {reason}\n"


def classify_pipeline(ctx: BatchContext, item: str, result: JobResult) -> JobResult:
    """Save the pipeline's log (with how it ended, if not well); the item succeeded only
    if the seed's report rules say so, so the ledger and the report agree."""
    log = ctx.backend.logs(result.name)
    if result.outcome is not Outcome.SUCCEEDED:
        log += ("" if not log or log.endswith("\n") else "\n") + ending_line(result)
    tags = {"collection": ctx.collections.get(item, "")}
    messages = ctx.save_log("pipeline", item, tags, result.name, log)
    if result.outcome is Outcome.SUCCEEDED and not item_succeeded(item, messages):
        marks = [m.message for m in messages if FAILED_MARK in m.message]
        message = marks[-1] if marks else "no Pipeline SUCCESS or exiting-early line"
        update = {"outcome": Outcome.FAILED, "message": redact(message, ctx.secrets)[:500]}
        return result.model_copy(update=update)
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

    Each entry's part of its last job's log is saved under its item (``sluice.stac.logs``).
    A job killed for memory is retried a tier up (``ctx.tiers``). Returns the items with
    an entry that still failed after ``stage_retries``.
    """
    entries = [(p.item_id, n, row) for p in plans for n, row in enumerate(getattr(p, stage))]
    size = ctx.catchments_per_job if stage == "inundate" else ctx.entries_per_job
    batches = [(0, entries[i : i + size]) for i in range(0, len(entries), size)]  # (tier, batch)
    run = f"{ctx.run}/{stage}"
    last_log: dict[tuple[str, int], tuple[str, str]] = {}  # entry -> (job, its log part)
    for retry in range(ctx.stage_retries + 1):
        if not batches:
            break
        by_key = {f"{chunk}-{retry}-{n}": batch for n, batch in enumerate(batches)}
        tries = ctx.tries(run, stage, list(by_key), {k: tier for k, (tier, _) in by_key.items()})
        planned = [
            Planned(k, stage_job(ctx, stage, tries[k], batch), tier=tries[k].tier)
            for k, (_, batch) in by_key.items()
        ]
        results = run_jobs(
            ctx.backend, ctx.ledger, run, f"stac-{stage}", planned, timeout=ctx.timeout
        )
        batches = []
        for key, (_, batch) in by_key.items():
            result, name = results[key], tries[key].name
            parts = split_entries(ctx.backend.logs(name), len(batch))
            failed = result.outcome is not Outcome.SUCCEEDED
            ended = f"ERROR: {ending_line(result)}" if failed else ""
            for (item, n, _), part in zip(batch, parts, strict=True):
                last_log[item, n] = (name, part + ended)
            if failed:  # retried one entry per job, a tier up if it was killed for memory
                tier = ctx.tiers.after(tries[key].tier, result.outcome) or tries[key].tier
                batches += [(tier, [entry]) for entry in batch]
    job = STAGE_JOBS[stage]
    for (item, n), (name, text) in last_log.items():
        ctx.stage_messages[item] += ctx.save_log(job, item, {"entry": str(n)}, name, text)
    if stage == "inundate":  # a failed catchment is tolerated here; the report rules judge
        return set()
    return {item for _, batch in batches for item, _, _ in batch}


def stage_job(
    ctx: BatchContext, stage: str, job: Try, batch: list[tuple[str, int, dict]]
) -> JobSpec:
    """A stage job: its manifest (one row of the seed's meta per entry) written first.

    The command runs every row (the stand-ins do), printing ``ENTRY_MARK <n>`` before
    row ``n``; on Nomad it is dispatched through the generic ``sluice-job``, since the
    seed's stage jobs take one entry each.
    """
    manifest = ctx.outputs.write(
        f"{ctx.batch}/manifests/{stage}/{job.name}.jsonl",
        "".join(json.dumps(row) + "\n" for _, _, row in batch).encode(),
    )
    return JobSpec(
        name=job.name,
        command=[*ctx.stage_command, stage, "--manifest", manifest],
        env=ctx.job_env,
        memory_bytes=job.memory_bytes,
        labels={"sluice/stage": stage},
    )


def finish_items(
    ctx: BatchContext, chunk: str, plans: Sequence[ItemStages], failed: set[str]
) -> dict[str, JobResult]:
    """Record each item's stage-mode ending: Sluice is its pipeline coordinator, so it
    writes the coordinator's log line, and the item succeeded only if the seed's report
    rules say so over its stage logs and that line (an expected-empty item succeeds)."""
    now = datetime.now(UTC)
    name = f"stages-{chunk}"
    results = {}
    for plan in plans:
        item = plan.item_id
        stage_messages = ctx.stage_messages.pop(item, [])
        if plan.expected_empty:
            line = f"{EARLY_EXIT_MARK}: no scenarios or catchments"
        elif item in failed or stage_errors(item, stage_messages):
            line = f"{FAILED_MARK}: a stage job failed or logged an error"
        else:
            line = f"{SUCCESS_MARK}: {len(plan.agreement)}/{len(plan.agreement)} scenarios"
        tags = {"collection": ctx.collections.get(item, "")}
        messages = stage_messages + ctx.save_log("pipeline", item, tags, name, line + "\n")
        outcome = Outcome.SUCCEEDED if item_succeeded(item, messages) else Outcome.FAILED
        results[item] = JobResult(name=name, outcome=outcome, message=line, finished_at=now)
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
