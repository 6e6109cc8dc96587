"""Turn the sweep's parameters into a validated SweepConfig, or one clear error.

Every parameter of the flow is checked here, once, before anything starts: the CLI and
a flow run (UI, deployment) refuse the same things with the same one-line message.
"""

from __future__ import annotations

import os
import re
from enum import StrEnum
from pathlib import Path
from typing import Literal

from sluice.backends.kubernetes.indexed import items_annotation
from sluice.errors import SluiceInputError
from sluice.names import DNS1123_LABEL, JOB_NAME_PREFIX, KUBERNETES_NAMESPACE
from sluice.quantity import parse_cpu, parse_duration, parse_memory, shown
from sluice.sweep.chunks import make_chunks
from sluice.sweep.execution import SweepConfig
from sluice.sweep.selection import select_indexes
from sluice.sweep.template import load_source_job, load_template_file, workload_fingerprint
from sluice.tiers import TierSchedule

DEFAULT_TEMPLATE = "wetlands/job.yaml"
NOTHING_TO_DO = "No indexes resolved; nothing to do."
INT32_MAX = 2**31 - 1
MAX_PARALLELISM = 100_000
_JOB_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


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


def _check_range(value: int | None, flag: str, low: int, high: int, note: str = "") -> None:
    if value is not None and not low <= value <= high:
        raise SluiceInputError(f"{flag} {shown(value)}: must be {low} to {high:,}{note}")


def check_output_dir(path: str, flag: str) -> Path:
    """A directory that exists or can be created, checked before anything runs."""
    if not path or _UNPRINTABLE.search(path) or len(path) > 4096:
        raise SluiceInputError(f"{flag} {shown(path)}: not a usable directory name")
    directory = Path(path)
    probe = directory
    while not probe.exists():
        if probe.is_symlink():
            raise SluiceInputError(f"{flag} {path}: {probe} is a broken symlink")
        probe = probe.parent
    if not probe.is_dir():
        problem = "is a file" if probe == directory else f"{probe} is a file"
        raise SluiceInputError(f"{flag} {path}: {problem}, not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise SluiceInputError(f"{flag} {path}: {probe} is not writable")
    return directory


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
    parallelism: int | None = None,
    mode: str = "per-index",
    report_dir: str = "reports/sweep",
) -> tuple[SweepConfig, int | None, bool]:
    """The config, the starting tier (None: no tiers) and whether tiers come from history."""
    KUBERNETES_NAMESPACE.check(namespace, "--namespace")
    JOB_NAME_PREFIX.check(job_name_prefix, "--job-name-prefix")
    if source_job is not None and not _JOB_NAME.match(source_job):
        raise SluiceInputError(f"--source-job {shown(source_job)}: not a Job name")
    if memory is not None:
        parse_memory(memory, what="--memory")
    if cpu is not None:
        parse_cpu(cpu, what="--cpu")
    _check_range(backoff_limit, "--backoff-limit", 0, INT32_MAX)
    _check_range(ttl, "--ttl", -1, INT32_MAX, " (-1 omits ttlSecondsAfterFinished)")
    _check_range(parallelism, "--parallelism", 1, MAX_PARALLELISM)
    _check_range(chunk_size, "--chunk-size", 0, 10**9, " (0: no chunks)")
    check_output_dir(report_dir, "--report-dir")
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
