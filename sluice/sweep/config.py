"""Turn the sweep's parameters into a validated SweepConfig, or one clear error."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from sluice.errors import SluiceInputError
from sluice.names import DNS1123_LABEL, JOB_NAME_PREFIX, KUBERNETES_NAMESPACE
from sluice.quantity import parse_cpu, parse_duration, parse_memory
from sluice.sweep.chunks import make_chunks
from sluice.sweep.execution import SweepConfig
from sluice.sweep.selection import select_indexes
from sluice.sweep.template import load_source_job, load_template_file, workload_fingerprint
from sluice.tiers import TierSchedule

DEFAULT_TEMPLATE = "wetlands/job.yaml"


class DryRun(StrEnum):
    """The seed's apply modes."""

    NONE = "none"
    SERVER = "server"
    PRINT = "print"


TierChoice = int | Literal["auto"] | None


def check_dry_run(dry_run: DryRun, backend: str) -> None:
    """A server dry run needs an API server that can validate manifests."""
    if dry_run is DryRun.SERVER and backend != "kubernetes":
        raise SluiceInputError(f"--dry-run server needs --backend kubernetes (got {backend})")


def resolve_config(
    *,
    template_path: str | None,
    source_job: str | None,
    namespace: str,
    start: int,
    count: int,
    indexes: list[int] | None,
    index_file: str | None,
    limit: int | None,
    job_name_prefix: str,
    batch_label: str | None,
    batch_label_template: str,
    chunk_size: int | None,
    wait_timeout: str,
    tier: TierChoice,
    schedule_start_gi: float,
    schedule_factor: float,
    max_tier: int,
    memory: str | None,
    cpu: str | None,
    backoff_limit: int,
    ttl: int,
    replace: bool,
) -> tuple[SweepConfig, int | None, bool]:
    """The config, the starting tier (None: no tiers) and whether tiers come from history."""
    if memory is not None:
        parse_memory(memory, what="--memory")
    if cpu is not None:
        parse_cpu(cpu, what="--cpu")
    if backoff_limit < 0:
        raise SluiceInputError(f"--backoff-limit {backoff_limit}: must not be negative")
    KUBERNETES_NAMESPACE.check(namespace, "--namespace")
    JOB_NAME_PREFIX.check(job_name_prefix, "--job-name-prefix")
    if not DNS1123_LABEL.fullmatch(f"{job_name_prefix}-{10**6}-a99"):
        raise SluiceInputError(
            f"--job-name-prefix {job_name_prefix!r}: Job names must be lowercase DNS-1123 labels"
            " (a-z, 0-9, '-'), at most 50 characters for the prefix"
        )
    schedule = TierSchedule(start_gi=schedule_start_gi, factor=schedule_factor, max_tier=max_tier)
    auto = tier == "auto"
    start_tier = 0 if auto else tier
    if start_tier is not None:
        schedule.check_tier(int(start_tier))
    selected = select_indexes(
        indexes=indexes, index_file=index_file, start=start, count=count, limit=limit
    )
    if source_job:
        template = load_source_job(source_job, namespace)
    else:
        template = load_template_file(template_path or DEFAULT_TEMPLATE)
    tiers_on = start_tier is not None and memory is None
    config = SweepConfig(
        run=f"sweep/{namespace}/{job_name_prefix}",
        workload=workload_fingerprint(template),
        template=template,
        namespace=namespace,
        job_name_prefix=job_name_prefix,
        indexes=selected,
        chunks=make_chunks(
            selected,
            chunk_size=chunk_size,
            batch_label=batch_label,
            label_template=batch_label_template,
            tier=start_tier,
        ),
        schedule=schedule if tiers_on else None,
        memory=memory,
        cpu=cpu,
        backoff_limit=backoff_limit,
        ttl=ttl,
        wait_timeout=parse_duration(wait_timeout, what="--wait-timeout"),
        replace=replace,
    )
    return config, start_tier if tiers_on else None, auto and tiers_on
