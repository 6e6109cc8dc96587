"""The tiered index sweep: one job per index, RAM tiers, OOM escalation, a durable ledger.

Replaces wetlands' ``orchestrate_indices.py`` and ``restart_failed_indices.py``.
"""

from __future__ import annotations

import contextlib
from functools import partial
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner
from prefect_kubernetes.credentials import KubernetesCredentials
from sluice.blocks.ledger import LedgerSettings, open_flow_ledger
from sluice.tasks.reports import ProgressReporter, Terminal
from sluice.tasks.sweep import publish_sweep_report, run_sweep_chunk

from sluice.backends.factory import BackendKind, KubernetesMode, create_backend
from sluice.errors import WorkIncomplete
from sluice.inflight import bounded_futures
from sluice.jobs import nothing_to_submit
from sluice.ledger import hold_run
from sluice.ledger.queries import succeeded_count
from sluice.settings import sluice_home
from sluice.sweep.chunks import DEFAULT_LABEL_TEMPLATE
from sluice.sweep.config import (
    NOTHING_TO_DO,
    BackoffLimit,
    ChunkSize,
    DryRun,
    Parallelism,
    TierChoice,
    Ttl,
    check_dry_run,
    escalation_note,
    resolve_config,
)
from sluice.sweep.dry_run import print_manifests
from sluice.sweep.execution import SweepExecution, first_jobs
from sluice.sweep.plan import TierPolicy
from sluice.sweep.report import SweepSummary

CHUNKS_IN_FLIGHT = 8


class SweepIncomplete(WorkIncomplete):
    """Some indexes did not succeed; the report lists them."""


# A TaskRunner of any future type but PrefectFuture[Any] is refused by flow()'s
# annotation (TaskRunner is invariant): prefect's typing, not this code.
@flow(name="tiered-index-sweep", task_runner=ThreadPoolTaskRunner(max_workers=CHUNKS_IN_FLIGHT))  # type: ignore[arg-type]
def tiered_index_sweep(
    template_path: str | None = "wetlands/job.yaml",
    source_job: str | None = None,
    namespace: str = "biodiversity",
    start: int = 0,
    count: int = 18587,
    indexes: list[int] | None = None,
    index_file: str | None = None,
    limit: int | None = None,
    job_name_prefix: str = "wetlands-index",
    batch_label: str | None = None,
    batch_label_template: str = DEFAULT_LABEL_TEMPLATE,
    chunk_size: ChunkSize | None = None,
    wait_for_batch: bool = False,
    wait_timeout: str = "2h",
    tier: TierChoice = None,
    schedule_start_gi: float = 10.0,
    schedule_factor: float = 2.0,
    max_tier: int = 4,
    memory: str | None = None,
    cpu: str | None = None,
    backoff_limit: BackoffLimit = 0,
    ttl: Ttl = 3600,
    dry_run: DryRun = DryRun.NONE,
    replace: bool = False,
    quiet: bool = False,
    verbose: bool = False,
    backend: BackendKind = BackendKind.LOCAL,
    mode: KubernetesMode = KubernetesMode.PER_INDEX,
    kubernetes_credentials: KubernetesCredentials | None = None,
    parallelism: Parallelism | None = None,
    report_dir: str = "reports/sweep",
    ledger_url: str | None = None,
    ledger_block: LedgerSettings | None = None,
) -> SweepSummary | None:
    """Run every selected index as its own job, climbing RAM tiers on OOM.

    Args:
        template_path: Job template YAML (one template drives every backend).
        source_job: Clone a live Kubernetes Job instead of a template file.
        namespace: Kubernetes namespace (also names the sweep in the ledger).
        start: First index when generating a range.
        count: Number of consecutive indexes from `start`.
        indexes: Explicit indexes (win over `index_file` and the range).
        index_file: File of newline-delimited indexes (e.g. a tier<N>-failures.txt).
        limit: Cap on how many selected indexes are run.
        job_name_prefix: Prefix of Job names (`<prefix>-<index>`).
        batch_label: A constant `wetlands/batch` label for every Job.
        batch_label_template: Per-chunk label: {chunk}, {start}, {end}, {tier}.
        chunk_size: Indexes per chunk (a Prefect task run per chunk and tier); unset or 0 =
            one chunk.
        wait_for_batch: Finish each chunk (escalations included) before starting the next.
        wait_timeout: How long a chunk may wait for its jobs (2h, 30m, 90s).
        tier: Starting RAM tier, or `auto` to start each index at its lowest tier that
            succeeded in earlier sweeps of this template. Unset = OOM escalation is off:
            every job has the template's memory and an OOM is final (said at start).
        schedule_start_gi: Tier 0 memory in GiB.
        schedule_factor: Memory multiplier per tier.
        max_tier: Highest tier an OOM may escalate to.
        memory: Fixed memory for every job (disables tiers), e.g. 120Gi.
        cpu: CPU request = limit, e.g. 2 or 500m.
        backoff_limit: Same-size retries of a non-OOM failure.
        ttl: ttlSecondsAfterFinished (-1 omits it).
        dry_run: `print` the Jobs `mode` would create (contacting nothing),
            `server`-validate them, or `none` to run.
        replace: Re-run indexes even if they already succeeded.
        quiet: Print nothing while jobs run: no progress bar or lines, no per-job lines.
        verbose: Also print a line per finished job (the progress bar or lines show
            counts by outcome, rate and ETA without it).
        backend: Where jobs run: local processes, Kubernetes or Nomad.
        mode: Kubernetes only: one Job per index, or one Indexed Job per chunk and tier.
        kubernetes_credentials: A prefect-kubernetes KubernetesCredentials block (default:
            kubeconfig or in-cluster).
        parallelism: Jobs at once: local processes, or pods per Indexed Job (default:
            the template's spec.parallelism).
        report_dir: Where items.jsonl, tier<N>-failures.txt and summary.json go.
        ledger_url: Ledger store (default: SQLite under SLUICE_HOME; or postgresql://...).
        ledger_block: A LedgerSettings block (PostgreSQL with a secret password) instead.
    """
    parameters = dict(locals())  # exactly the parameters declared above
    check_dry_run(dry_run, backend)
    config, start_tier, auto = resolve_config(parameters)
    logger = get_run_logger()
    if not config.indexes:
        logger.info(NOTHING_TO_DO)
        return None
    if note := escalation_note(config, start_tier):
        logger.warning(note)
    if dry_run is DryRun.PRINT:
        print_manifests(config, start_tier, mode)
        return None

    runner = create_backend(
        backend,
        parallelism=config.parallelism,
        namespace=namespace,
        server_dry_run=dry_run is DryRun.SERVER,
        kubernetes_mode=mode,
        kubernetes_credentials=kubernetes_credentials,
        log_dir=sluice_home() / "logs" / config.run.replace("/", "-"),
    )
    runner.preflight()
    if dry_run is DryRun.SERVER:
        try:
            for chunk in config.chunks:
                runner.submit(list(first_jobs(config, chunk, start_tier)))
        finally:
            runner.close()
        logger.info("server dry run: the Jobs of %d indexes accepted", len(config.indexes))
        return None

    ledger = open_flow_ledger(ledger_url, ledger_block)
    history = ledger.lowest_succeeded_tiers(config.workload) if auto else {}
    policy = TierPolicy(start=start_tier, max_tier=max_tier, history=history)
    progress = ProgressReporter(
        len(config.indexes),
        f"{config.run}: indexes finished",
        terminal=None if quiet else Terminal(logger.info),
    )
    execution = SweepExecution(
        config, runner, ledger, policy, on_result=_result_printer(progress, verbose and not quiet)
    )
    # Tier escalation is Prefect's retry: one retry per tier an OOM may still climb.
    climbs = max_tier - start_tier if start_tier is not None else 0
    chunk_task = run_sweep_chunk.with_options(retries=climbs)
    chunks = config.chunks
    done = 0 if replace else succeeded_count(ledger, config.run, map(str, config.indexes))
    if done == len(config.indexes):  # a re-run of a finished sweep: say so, submit nothing
        logger.info(nothing_to_submit(done, done, "indexes"))
        chunks = []
    with contextlib.closing(runner), hold_run(ledger, config.run), progress:
        pending = iter(chunks)
        in_flight = 1 if wait_for_batch else None  # a chunk, escalations included, at a time
        for chunk, future in bounded_futures(
            lambda: next(pending, None), partial(chunk_task.submit, execution), in_flight
        ):
            future.wait()
            if future.state.is_failed():
                logger.error("%s did not finish: %s", chunk.name, future.state.message)
    summary = publish_sweep_report(execution, Path(report_dir))
    ledger.close()
    if summary.failed:
        raise SweepIncomplete(
            f"{summary.failed} of {summary.total} indexes did not succeed; "
            f"see {report_dir}/items.jsonl and tier<N>-failures.txt"
        )
    return summary


def _result_printer(progress: ProgressReporter, per_item: bool):
    logger = get_run_logger()

    def on_result(item: str, result) -> None:
        progress.advance(outcome=result.outcome.value)
        if per_item:
            logger.info("index %s: %s (%s)", item, result.outcome.value, result.name)

    return on_result
