"""Running one chunk of a sweep at one round: plan from the ledger, run, report who climbs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sluice.backends.base import Backend
from sluice.backends.expansion import expand_command
from sluice.backends.kubernetes.manifests import first_container
from sluice.execute import Planned, run_jobs
from sluice.jobs import JobResult, JobSpec, Outcome
from sluice.ledger.base import Attempt, Ledger
from sluice.quantity import parse_cpu, parse_memory
from sluice.sweep.chunks import Chunk
from sluice.sweep.manifest import BATCH_LABEL, INDEX_LABEL, index_job_manifest
from sluice.sweep.plan import Action, IndexPlan, TierPolicy, job_name, plan_index
from sluice.sweep.template import container_argv, container_env
from sluice.tiers import TierSchedule


def seed_timestamp() -> str:
    """The seed's annotation time: seconds and offset, ``2026-11-30T07:00:02+00:00``."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class OOMEscalation(Exception):
    """Some indexes of a chunk ran out of memory below the max tier: retry the chunk."""


@dataclass
class SweepConfig:
    """A sweep's validated inputs."""

    run: str
    workload: str
    template: dict[str, Any]
    namespace: str
    job_name_prefix: str
    indexes: Sequence[int]
    chunks: list[Chunk]
    schedule: TierSchedule | None
    memory: str | None = None
    cpu: str | None = None
    backoff_limit: int = 0
    ttl: int = 3600
    wait_timeout: float | None = None
    replace: bool = False
    parallelism: int | None = None
    timestamp: str = field(default_factory=seed_timestamp)

    def memory_for(self, tier: int | None) -> str | None:
        if self.memory is not None or tier is None or self.schedule is None:
            return self.memory
        return self.schedule.memory_quantity(tier)


@dataclass
class ChunkResult:
    """What one round of a chunk did; ``next_tier`` is where its OOMs climb (None: done)."""

    chunk: str
    ran: int
    outcomes: dict[str, int]
    escalating: int
    next_tier: int | None = None


def build_job(
    config: SweepConfig, chunk: Chunk, index: int, tier: int | None, name: str
) -> JobSpec:
    """The JobSpec for one index at one tier: its manifest plus what a process needs."""
    manifest = index_job_manifest(
        config.template,
        name=name,
        namespace=config.namespace,
        index=index,
        batch_label=chunk.label_at(tier),
        memory=config.memory_for(tier),
        cpu=config.cpu,
        backoff_limit=config.backoff_limit,
        ttl=config.ttl,
        timestamp=config.timestamp,
    )
    container = first_container(manifest)
    limits = container.get("resources", {}).get("limits", {})
    labels = manifest["metadata"]["labels"]
    env = container_env(manifest)
    return JobSpec(
        name=name,
        command=expand_command(container_argv(manifest), env),
        env=env,
        memory_bytes=parse_memory(limits["memory"]) if "memory" in limits else None,
        cpu=parse_cpu(limits["cpu"]) if "cpu" in limits else None,
        labels={k: labels[k] for k in (INDEX_LABEL, BATCH_LABEL) if k in labels},
        annotations=manifest["metadata"]["annotations"],
        backoff_limit=config.backoff_limit,
        workdir=container.get("workingDir"),
        image=container.get("image"),
        template=manifest,
    )


def first_jobs(config: SweepConfig, chunk: Chunk, start_tier: int | None) -> Iterator[JobSpec]:
    """A chunk's first round on an empty ledger, named and sized as the seed built them."""
    for index in chunk.indexes:
        yield build_job(
            config, chunk, index, start_tier, job_name(config.job_name_prefix, index, 0)
        )


class SweepExecution:
    """Everything a chunk task needs; one instance per flow run, shared by chunk threads."""

    def __init__(
        self,
        config: SweepConfig,
        backend: Backend,
        ledger: Ledger,
        policy: TierPolicy,
        *,
        on_result: Callable[[str, JobResult], None] | None = None,
    ) -> None:
        self.config = config
        self.backend = backend
        self.ledger = ledger
        self.policy = policy
        self.flow_start_id = ledger.last_id(config.run)
        self.baseline_id = self.flow_start_id if config.replace else 0
        self.on_result = on_result
        self.continued: set[int] = set()  # earlier attempts re-attached in this flow run

    def ran_here(self, attempt: Attempt) -> bool:
        """Whether ``attempt`` ran (or was re-attached and finished) in this flow run."""
        return attempt.id > self.flow_start_id or attempt.id in self.continued

    def history(self, chunk: Chunk) -> dict[str, list[Attempt]]:
        """The recorded attempts of the chunk's indexes, by index, oldest first."""
        history: dict[str, list[Attempt]] = {}
        for attempt in self.ledger.attempts(self.config.run, map(str, chunk.indexes)):
            history.setdefault(attempt.item, []).append(attempt)
        return history

    def reported(self) -> Iterator[tuple[int, list[Attempt]]]:
        """Every index with its attempts of this sweep (since the baseline), in order,
        read from the ledger a chunk at a time."""
        for chunk in self.config.chunks:
            history = self.history(chunk)
            for index in chunk.indexes:
                tried = history.get(str(index), [])
                yield index, [a for a in tried if a.id > self.baseline_id]

    def plan(self, chunk: Chunk) -> list[IndexPlan]:
        history = self.history(chunk)
        return [
            plan_index(
                i,
                history.get(str(i), []),
                prefix=self.config.job_name_prefix,
                policy=self.policy,
                baseline_id=self.baseline_id,
                flow_start_id=self.flow_start_id,
                continued=self.continued,
            )
            for i in chunk.indexes
        ]

    def run_chunk(self, chunk: Chunk) -> ChunkResult:
        """Run what the ledger says is pending; report the indexes that must climb a tier.

        An index whose attempt has no outcome (the orchestrator stopped) is re-attached
        under the same job name and that attempt continues: a job that never started is
        not a failure and costs nothing.
        """
        pending = [p for p in self.plan(chunk) if p.action is not Action.DONE]
        tiers = {str(p.index): p.tier for p in pending}
        self.continued.update(p.last.id for p in pending if p.action is Action.ADOPT and p.last)

        def escalates(item: str, result: JobResult) -> bool:
            return result.outcome is Outcome.OOM and self.policy.can_climb(tiers[item])

        def on_result(item: str, result: JobResult) -> None:
            if self.on_result and not escalates(item, result):
                self.on_result(item, result)

        results = run_jobs(
            self.backend,
            self.ledger,
            self.config.run,
            self.config.workload,
            [
                Planned(
                    str(p.index),
                    build_job(self.config, chunk, p.index, p.tier, p.job_name),
                    p.tier,
                    attempt_id=p.last.id if p.action is Action.ADOPT and p.last else None,
                )
                for p in pending
            ],
            timeout=self.config.wait_timeout,
            on_result=on_result,
        )
        climbing = [
            tier + 1
            for item, r in results.items()
            if escalates(item, r) and (tier := tiers[item]) is not None
        ]
        return ChunkResult(
            chunk=chunk.name,
            ran=len(results),
            outcomes=dict(Counter(r.outcome.value for r in results.values())),
            escalating=len(climbing),
            next_tier=min(climbing, default=None),
        )
