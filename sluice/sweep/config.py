"""Turn the sweep's parameters into a validated SweepConfig, or one clear error.

Every parameter of the flow is checked here, once, before anything starts: the CLI and
a flow run (UI, deployment) refuse the same things with the same one-line message.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field

from sluice.backends.kubernetes.indexed import items_annotation
from sluice.errors import SluiceInputError
from sluice.locations import check_directory
from sluice.names import DNS1123_LABEL, DNS1123_SUBDOMAIN, JOB_NAME_PREFIX, KUBERNETES_NAMESPACE
from sluice.quantity import parse_cpu, parse_duration, parse_memory, shown
from sluice.sweep.chunks import make_chunks
from sluice.sweep.execution import SweepConfig
from sluice.sweep.selection import select_indexes
from sluice.sweep.template import load_source_job, load_template_file, workload_fingerprint
from sluice.tiers import MAX_TIER, TierSchedule

DEFAULT_TEMPLATE = "wetlands/job.yaml"
NOTHING_TO_DO = "No indexes resolved; nothing to do."
INT32_MAX = 2**31 - 1
MAX_PARALLELISM = 100_000


class DryRun(StrEnum):
    """The seed's apply modes."""

    NONE = "none"
    SERVER = "server"
    PRINT = "print"


# A tier number or "auto"; the bound is declared here, so the UI form, a deployment run and
# the CLI refuse the same tiers.
TierChoice = Annotated[int, Field(ge=0, le=MAX_TIER)] | Literal["auto"] | None
# The bounds of the flow's counts, declared on its parameters (flows/sweep.py).
BackoffLimit = Annotated[int, Field(ge=0, le=INT32_MAX)]
Ttl = Annotated[int, Field(ge=-1, le=INT32_MAX)]  # -1 omits ttlSecondsAfterFinished
Parallelism = Annotated[int, Field(ge=1, le=MAX_PARALLELISM)]
ChunkSize = Annotated[int, Field(ge=0, le=10**9)]


def check_dry_run(dry_run: DryRun, backend: str) -> None:
    """A server dry run needs an API server that can validate manifests."""
    if dry_run is DryRun.SERVER and backend != "kubernetes":
        raise SluiceInputError(f"--dry-run server needs --backend kubernetes (got {backend})")


def escalation_note(config: SweepConfig, start_tier: int | None) -> str | None:
    """The line said at start when OOM escalation is off (None when it is on)."""
    if start_tier is not None:
        return None
    if config.memory is not None:
        return (
            f"OOM escalation is off: --memory {config.memory} fixes every job's memory,"
            " so an OOM is final"
        )
    limits = config.template["spec"]["template"]["spec"]["containers"][0].get("resources") or {}
    limit = (limits.get("limits") or {}).get("memory")
    held = f"the template's memory limit ({limit})" if limit else "no memory limit"
    return (
        f"OOM escalation is off (no --tier): every job runs with {held} and an OOM is final;"
        " pass --tier 0 to climb RAM tiers from --schedule-start-gi"
    )


def resolve_config(
    parameters: Mapping[str, Any],
) -> tuple[SweepConfig, int | None, bool]:
    """The config, the starting tier (None: no tiers) and whether tiers come from history.

    ``parameters`` are the sweep flow's (``flows/sweep.py`` declares them); the flow runs
    this first, and the CLI runs it before it starts a server.
    """
    template_path = parameters["template_path"]
    source_job = parameters["source_job"]
    namespace = parameters["namespace"]
    start = parameters["start"]
    count = parameters["count"]
    indexes = parameters["indexes"]
    index_file = parameters["index_file"]
    limit = parameters["limit"]
    job_name_prefix = parameters["job_name_prefix"]
    batch_label = parameters["batch_label"]
    batch_label_template = parameters["batch_label_template"]
    chunk_size = parameters["chunk_size"]
    wait_timeout = parameters["wait_timeout"]
    tier = parameters["tier"]
    schedule_start_gi = parameters["schedule_start_gi"]
    schedule_factor = parameters["schedule_factor"]
    max_tier = parameters["max_tier"]
    memory = parameters["memory"]
    cpu = parameters["cpu"]
    backoff_limit = parameters["backoff_limit"]
    ttl = parameters["ttl"]
    replace = parameters["replace"]
    parallelism = parameters.get("parallelism", None)
    mode = parameters.get("mode", "per-index")
    report_dir = parameters.get("report_dir", "reports/sweep")
    KUBERNETES_NAMESPACE.check(namespace, "--namespace")
    JOB_NAME_PREFIX.check(job_name_prefix, "--job-name-prefix")
    if source_job is not None and not DNS1123_SUBDOMAIN.fullmatch(source_job):
        raise SluiceInputError(f"--source-job {shown(source_job)}: not a Job name")
    if memory is not None:
        parse_memory(memory, what="--memory")
    if cpu is not None:
        parse_cpu(cpu, what="--cpu")
    check_directory(report_dir, "--report-dir")
    timeout = parse_duration(wait_timeout, what="--wait-timeout")
    schedule = TierSchedule(start_gi=schedule_start_gi, factor=schedule_factor, max_tier=max_tier)
    auto = tier == "auto"
    start_tier = 0 if tier == "auto" else tier
    if start_tier is not None:
        schedule.check_tier(int(start_tier))
    selected = select_indexes(
        indexes=indexes, index_file=index_file, start=start, count=count, limit=limit
    )
    longest = f"{job_name_prefix}-{selected[-1] if selected else 0}-a999"
    if not DNS1123_LABEL.fullmatch(longest):
        raise SluiceInputError(
            f"--job-name-prefix {shown(job_name_prefix)}: Job names <prefix>-<index>-a<n> must"
            f" be lowercase DNS-1123 labels (a-z, 0-9, '-'), at most 63 characters"
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
            label_tier=start_tier,
            tiers=(start_tier, max_tier) if tiers_on else (None,),
        ),
        schedule=schedule if tiers_on else None,
        memory=memory,
        cpu=cpu,
        backoff_limit=backoff_limit,
        ttl=ttl,
        wait_timeout=timeout,
        replace=replace,
        parallelism=parallelism or _template_parallelism(template, mode),
    )
    if mode == "indexed":
        what = f"--mode indexed --chunk-size {chunk_size or 0} (0: one chunk)"
        for chunk in config.chunks:  # the names of a late attempt are the longest
            items_annotation([f"{job_name_prefix}-{i}-a99" for i in chunk.indexes], what=what)
    return config, start_tier if tiers_on else None, auto and tiers_on


def _template_parallelism(template: dict, mode: str) -> int | None:
    """Indexed mode's default pods at once: the template's own ``spec.parallelism``."""
    value = template["spec"].get("parallelism")
    if mode != "indexed" or not isinstance(value, int) or isinstance(value, bool):
        return None
    return min(max(value, 1), MAX_PARALLELISM)
