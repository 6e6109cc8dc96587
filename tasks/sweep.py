"""The sweep's steps: run a chunk (retried a tier higher on OOM) and report."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE
from sluice.tasks.reports import artifact_key, publish_markdown, publish_table
from sluice.tasks.retry import retry_on

from sluice.sweep.chunks import Chunk
from sluice.sweep.execution import ChunkResult, OOMEscalation, SweepExecution
from sluice.sweep.pictures import write_sweep_reports
from sluice.sweep.report import SweepSummary


@task(
    cache_policy=NO_CACHE,
    retry_condition_fn=retry_on(OOMEscalation),
    retry_delay_seconds=0,
    task_run_name="{chunk.name}",
)
def run_sweep_chunk(execution: SweepExecution, chunk: Chunk) -> ChunkResult:
    """Run a chunk's pending indexes. When some ran out of memory below the max tier the
    attempt fails with ``OOMEscalation``, the one exception Prefect retries, and the retry
    runs only those indexes, one tier higher (their Jobs carry that tier's batch label).
    The task run is named for the chunk, not a tier, since a retry keeps its name."""
    try:
        result = execution.run_chunk(chunk)
    finally:
        attempts = execution.ledger.attempts(execution.config.run, map(str, chunk.indexes))
        counts = Counter(
            (a.tier, a.outcome.value if a.outcome else "running")
            for a in attempts
            if execution.ran_here(a)
        )
        publish_table.fn(
            artifact_key("sweep", chunk.name),
            [
                {"tier": tier, "outcome": outcome, "attempts": n}
                for (tier, outcome), n in sorted(counts.items(), key=str)
            ],
            f"{chunk.name}: attempts by tier and outcome in this flow run",
        )
    if result.next_tier is not None:
        raise OOMEscalation(
            f"{result.escalating} index{'es' if result.escalating != 1 else ''} ran out of "
            f"memory: retrying {'them' if result.escalating != 1 else 'it'} at tier "
            f"{result.next_tier}"
        )
    return result


@task(cache_policy=NO_CACHE)
def publish_sweep_report(execution: SweepExecution, report_dir: Path) -> SweepSummary:
    """Report files from the ledger (read and written a chunk at a time), plus table and
    markdown artifacts."""
    config = execution.config
    summary, failures, page = write_sweep_reports(execution, report_dir)
    publish_table.fn(
        artifact_key("sweep-summary", config.job_name_prefix),
        [{"outcome": k, "indexes": v} for k, v in sorted(summary.by_reason.items())]
        + [
            {"outcome": f"succeeded at tier {t}", "indexes": n}
            for t, n in sorted(summary.succeeded_by_tier.items())
        ],
        f"{config.run}: indexes by final outcome and tier",
    )
    publish_markdown.fn(
        artifact_key("sweep-report", config.job_name_prefix),
        _summary_markdown(summary, failures, report_dir, page, config.ttl),
        f"{config.run}: summary",
    )
    return summary


def _summary_markdown(
    summary: SweepSummary, failures: Mapping[int, int], report_dir: Path, page: Path, ttl: int
) -> str:
    lines = [
        f"# Sweep `{summary.run}`",
        f"- **{summary.succeeded} / {summary.total}** indexes succeeded, "
        f"{summary.failed} failed, {summary.attempts} attempts",
        f"- GiB-hours requested: {summary.gib_hours_succeeded:.4f} by succeeded attempts, "
        f"{summary.gib_hours_failed:.4f} by failed attempts",
        f"- Reports in `{report_dir}`: items.jsonl, summary.json"
        + "".join(f", tier{t}-failures.txt ({n})" for t, n in sorted(failures.items())),
        f"- Pictures: `{page}` (open with `sluice report {report_dir}`)",
        f"- Job logs: `sluice logs {summary.run} INDEX` (this machine's log files); on "
        "Kubernetes add `--backend kubernetes`: the pods' logs, kept "
        + ("until the Jobs are deleted" if ttl < 0 else f"{ttl} s after each Job ends")
        + "; the end of each failed attempt's log stays in the ledger, where `sluice logs` "
        "finds it once the pod is gone",
    ]
    return "\n".join(lines) + "\n"
